package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// TestMain removes the collector the harness built for this run.
func TestMain(m *testing.M) { stack.Main(m) }

// e2eQueue is the queue the orchestrators of TestOrchestratorEndToEnd use.
const e2eQueue = "e2e_tasks"

// TestOrchestratorEndToEnd runs the example orchestrator, built as users
// build it, against a fresh database, exporting over OTLP (configured by
// OTEL_* only) to the real collector with the shipped configuration, and
// asks the real Prometheus scraping it whether the numbers are the true
// ones:
//
//   - active processors: all 3 processors busy shows as 3;
//   - pool utilization: within [0, 1], above 0 under load, equal to the
//     orchestrator's own used/max; every acquire timed in
//     db.client.connection.wait_time;
//   - every query of the Grafana dashboard returns data;
//   - queue depth, at a quiescent moment (the busy orchestrator stopped by
//     SIGTERM, a second one only reporting), equals count(*) of the queue
//     table.
func TestOrchestratorEndToEnd(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("stops the orchestrator with SIGTERM")
	}
	s := stack.Start(t)
	db := pgmqtest.New(t)
	bin := buildOrchestrator(t)
	// pool_min_idle_conns makes the pool report db.client.connection.idle.min,
	// which a dashboard query reads.
	dbURL := withQueryParam(t, db.URL, "pool_min_idle_conns", "1")

	// Phase 1: more work than the processors can take, so all stay busy.
	worker := startOrchestrator(t, bin, s, dbURL, "e2e-worker",
		"-processors", "3", "-rate", "40", "-work", "3s", "-queue", e2eQueue, "-fail-rate", "0.1", "-vt", "10s")

	t.Run("active processors", func(t *testing.T) {
		const promql = `sum(orchestration_processor_active)`
		v := waitForValue(t, s, promql, func(v float64) bool { return v == 3 })
		// A processor is idle for the moment between two messages; wait
		// for an instant when the orchestrator itself counts all three.
		var active int64
		stack.WaitFor(t, stack.DefaultTimeout, "/healthz active_processors 3", func(ctx context.Context) error {
			rep, err := worker.fetchHealth(ctx)
			if active = rep.ActiveProcessors; err == nil && active != 3 {
				err = fmt.Errorf("active_processors %d", active)
			}
			return err
		})
		t.Logf("Prometheus %s = %v; truth: -processors 3, /healthz active_processors %d", promql, v, active)
	})

	t.Run("pool utilization", func(t *testing.T) {
		const promql = `pgxpool_connection_utilization_ratio{service_instance_id="e2e-worker"}`
		// Busy processors hold their connections: 3 of max 5 (processors+2).
		// The producer's sends take a connection now and then, briefly.
		const want = 3.0 / 5
		v := waitForValue(t, s, promql, func(v float64) bool { return v == want })
		rep := worker.health(t)
		for name, p := range rep.Pools {
			t.Logf("Prometheus %s = %v; truth: /healthz pool %s used %d / max %d = %v", promql, v, name, p.Used, p.Max, p.Utilization)
		}
		if v < 0 || v > 1 {
			t.Errorf("utilization %v outside [0, 1]", v)
		}
		// Over the whole run, not only now.
		for _, q := range []string{
			`min_over_time(pgxpool_connection_utilization_ratio{service_instance_id="e2e-worker"}[5m])`,
			`max_over_time(pgxpool_connection_utilization_ratio{service_instance_id="e2e-worker"}[5m])`,
		} {
			for _, x := range s.QueryInstant(t, q) {
				t.Logf("Prometheus %s = %v", q, x.Value)
				if x.Value < 0 || x.Value > 1 {
					t.Errorf("%s = %v, outside [0, 1]", q, x.Value)
				}
			}
		}
	})

	t.Run("pool wait time", func(t *testing.T) {
		// The orchestrator's pool holds a PoolTracer: every acquire is one
		// observation of db.client.connection.wait_time, under the pool's name.
		const promql = `db_client_connection_wait_time_seconds_count{service_instance_id="e2e-worker"}`
		v := waitForValue(t, s, promql, func(v float64) bool { return v > 0 })
		got := s.QueryInstant(t, promql)
		if len(got) != 1 || got[0].Labels["db_client_connection_pool_name"] == "" {
			t.Errorf("%s: %v, want one series per pool, named", promql, got)
		}
		t.Logf("Prometheus %s = %v acquires timed", promql, v)
	})

	t.Run("dashboard", func(t *testing.T) {
		path, err := stack.DashboardPath()
		if err != nil {
			t.Fatal(err)
		}
		results := s.CheckDashboard(t, path)
		for _, r := range results {
			t.Logf("dashboard %q/%s: %d series, first %v", r.Panel, r.RefID, len(r.Samples), firstValue(r.Samples))
		}
	})

	// Phase 2: stop the worker; the queue no longer changes.
	if code := worker.stop(t); code != 0 {
		t.Fatalf("orchestrator exited %d after SIGTERM, want 0\n%s", code, worker.output())
	}
	t.Run("processors back to 0 after SIGTERM", func(t *testing.T) {
		// The last export, made at shutdown, still observes the processors.
		const promql = `sum(orchestration_processor_active{service_instance_id="e2e-worker"})`
		v := waitForValue(t, s, promql, func(v float64) bool { return v == 0 })
		t.Logf("Prometheus %s = %v after exit; truth 0", promql, v)
	})

	t.Run("queue depth", func(t *testing.T) {
		reporter := startOrchestrator(t, bin, s, dbURL, "e2e-reporter",
			"-processors", "0", "-rate", "0", "-queue", e2eQueue)
		truth := countQueue(t, db)
		// The stopped worker's last series stay in the collector for its
		// metric_expiration (1m); the value asked for is the reporter's.
		promql := fmt.Sprintf(`sum(max by (messaging_destination_name, pgmq_message_state) `+
			`(pgmq_queue_depth{messaging_destination_name=%q, service_instance_id="e2e-reporter"}))`, e2eQueue)
		v := waitForValue(t, s, promql, func(v float64) bool { return v == float64(truth) })
		if again := countQueue(t, db); again != truth {
			t.Fatalf("the queue changed while nothing ran: %d, then %d messages", truth, again)
		}
		rep := reporter.health(t)
		all := fmt.Sprintf(`sum(max by (messaging_destination_name, pgmq_message_state) (pgmq_queue_depth{messaging_destination_name=%q}))`, e2eQueue)
		t.Logf("Prometheus %s = %v; truth: SELECT count(*) FROM pgmq.q_%s = %d; /healthz %+v",
			promql, v, e2eQueue, truth, rep.Databases)
		for _, x := range s.QueryInstant(t, all) {
			t.Logf("for reference, across both instances (the worker's last values included): %s = %v", all, x.Value)
		}
		if truth == 0 {
			t.Errorf("the queue is empty: the load was meant to leave a backlog")
		}
		if code := reporter.stop(t); code != 0 {
			t.Errorf("reporting orchestrator exited %d after SIGTERM, want 0\n%s", code, reporter.output())
		}
	})
}

// buildOrchestrator builds examples/orchestrator from the repository root,
// as a user would, into the test's temporary directory.
func buildOrchestrator(t *testing.T) string {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "orchestrator")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/orchestrator")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/orchestrator: %v\n%s", err, out)
	}
	return bin
}

// orchestratorProc is a running orchestrator process.
type orchestratorProc struct {
	cmd       *exec.Cmd
	out       *lockedBuffer // stdout and stderr
	healthURL string
	exited    chan struct{}
	exitCode  int
}

// startOrchestrator starts the binary with its OTLP exporter pointed at the
// stack's collector, exporting every second, under the given
// service.instance.id. It waits until the health endpoint answers, and
// kills the process at the end of the test if it still runs.
func startOrchestrator(t *testing.T, bin string, s *stack.Stack, dbURL, instance string, args ...string) *orchestratorProc {
	t.Helper()
	args = append([]string{"-health-addr", "127.0.0.1:0", "-summary", "2s"}, args...)
	p := &orchestratorProc{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), s.Collector.OTLPEnv()...)
	p.cmd.Env = append(p.cmd.Env,
		"DATABASE_URL="+dbURL,
		"OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
		"OTEL_SERVICE_NAME=orchestrator",
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id="+instance,
		"OTEL_SDK_DISABLED=", "OTEL_METRICS_EXPORTER=",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start orchestrator: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		if err != nil && p.exitCode == 0 {
			p.exitCode = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("--- orchestrator %s output ---\n%s", instance, p.output())
		}
	})

	healthURL := regexp.MustCompile(`health=(http://\S+)`)
	stack.WaitFor(t, stack.DefaultTimeout, "orchestrator "+instance+" to serve /healthz", func(ctx context.Context) error {
		select {
		case <-p.exited:
			return fmt.Errorf("exited with %d: %s", p.exitCode, p.output())
		default:
		}
		m := healthURL.FindStringSubmatch(p.output())
		if m == nil {
			return errors.New("no health address logged yet")
		}
		p.healthURL = m[1]
		_, err := p.fetchHealth(ctx)
		return err
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *orchestratorProc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(stack.DefaultTimeout):
		t.Fatalf("orchestrator still running %v after SIGTERM\n%s", stack.DefaultTimeout, p.output())
		return -1
	}
}

func (p *orchestratorProc) output() string { return p.out.String() }

// healthReport is the part of /healthz this test reads.
type healthReport struct {
	ActiveProcessors int64 `json:"active_processors"`
	Pools            map[string]struct {
		Utilization float64 `json:"utilization"`
		Used        int32   `json:"used"`
		Max         int32   `json:"max"`
	} `json:"pools"`
	Databases []struct {
		Queues map[string]struct {
			Depth     *int64 `json:"depth"`
			Visible   *int64 `json:"visible"`
			Invisible *int64 `json:"invisible"`
		} `json:"queues"`
	} `json:"databases"`
	Database struct {
		Healthy bool   `json:"healthy"`
		Error   string `json:"error"`
	} `json:"database"`
}

// fetchHealth gets /healthz and requires a healthy database.
func (p *orchestratorProc) fetchHealth(ctx context.Context) (healthReport, error) {
	var rep healthReport
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.healthURL, nil)
	if err != nil {
		return rep, err
	}
	req.Close = true // no idle connection left behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("decode /healthz: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !rep.Database.Healthy {
		return rep, fmt.Errorf("/healthz: %s, database %+v", resp.Status, rep.Database)
	}
	return rep, nil
}

func (p *orchestratorProc) health(t *testing.T) healthReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := p.fetchHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// waitForValue polls an instant query returning one sample until ok holds
// for its value, and returns that value.
func waitForValue(t *testing.T, s *stack.Stack, promql string, ok func(float64) bool) float64 {
	t.Helper()
	var v float64
	stack.WaitFor(t, stack.DefaultTimeout, promql, func(ctx context.Context) error {
		got, err := s.Prometheus.Query(ctx, promql)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("%d samples, want 1: %v", len(got), got)
		}
		if v = got[0].Value; !ok(v) {
			return fmt.Errorf("value %v", v)
		}
		return nil
	})
	return v
}

// countQueue counts the queue's messages in its table.
func countQueue(t *testing.T, db *pgmqtest.DB) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM pgmq.q_"+e2eQueue).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// withQueryParam adds a parameter to a postgres:// URL.
func withQueryParam(t *testing.T, dbURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		t.Skipf("DATABASE_URL must be a URL for this test: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func firstValue(s []stack.Sample) any {
	if len(s) == 0 {
		return "none"
	}
	return s[0].Value
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
