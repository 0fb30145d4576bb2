//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// churnPlan is what the soak does and when, as offsets from its start.
type churnPlan struct {
	duration          time.Duration
	interval          time.Duration // the replicas' export interval
	churnEvery        time.Duration // a queue created and filled
	churnLife         time.Duration // ... and dropped this long after
	kills, freezes    []time.Duration
	freezeFor         time.Duration
	dbRestart         time.Duration
	collectorRestarts []time.Duration
	collectorDown     time.Duration
	measureEvery      time.Duration
}

// The replicas' sampler settings: otelmetrics' defaults with a Provider.
const (
	soakMinInterval   = time.Second     // queuesampler.DefaultMinInterval
	soakSampleTimeout = 2 * time.Second // queuesampler.DefaultSampleTimeout
	busyQueue         = "task_requests"
)

// newChurnPlan spreads the events over d: the full form (an hour, say)
// kills a replica every 6 minutes and freezes one every 6 minutes, three
// minutes apart, restarts PostgreSQL once and the Collector twice; a short
// form (under 10 minutes, as in CI) does each once.
func newChurnPlan(d time.Duration) churnPlan {
	p := churnPlan{duration: d, interval: 2 * time.Second, churnEvery: 3 * time.Second, churnLife: 9 * time.Second,
		freezeFor: 20 * time.Second, collectorDown: 8 * time.Second, measureEvery: 10 * time.Second}
	if d < 10*time.Minute {
		frac := func(f float64) time.Duration { return time.Duration(f * float64(d)).Round(time.Second) }
		p.kills, p.freezes = []time.Duration{frac(0.2)}, []time.Duration{frac(0.4)}
		p.dbRestart, p.collectorRestarts = frac(0.6), []time.Duration{frac(0.8)}
		p.measureEvery = 5 * time.Second
		return p
	}
	for t := 2 * time.Minute; t < d-2*time.Minute; t += 6 * time.Minute {
		p.kills = append(p.kills, t)
	}
	for t := 5 * time.Minute; t < d-2*time.Minute; t += 6 * time.Minute {
		p.freezes = append(p.freezes, t)
	}
	p.dbRestart = d/2 - 30*time.Second
	p.collectorRestarts = []time.Duration{d/4 + time.Minute, 3*d/4 + time.Minute}
	return p
}

// soakDurationFrom reads PGMQOTEL_CHURN (a Go duration; 3m by default).
func soakDurationFrom(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("PGMQOTEL_CHURN")
	if v == "" {
		return 3 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute || d > 3*time.Hour {
		t.Fatalf("PGMQOTEL_CHURN=%q: want a Go duration from 1m to 3h", v)
	}
	return d
}

// soakCollector starts the Collector with the shipped configuration plus
// an exporter to the soak's sink, on fixed addresses, so that restarts
// keep them.
func soakCollector(t *testing.T, dir, sink string, addrs []string, n int) *stack.Collector {
	t.Helper()
	cfg := filepath.Join(dir, "soak-collector.yaml")
	if err := os.WriteFile(cfg, []byte(`exporters:
  otlp_grpc/soak:
    endpoint: `+sink+`
    tls:
      insecure: true
service:
  pipelines:
    metrics:
      exporters: [prometheus, otlp_grpc/soak]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, fmt.Sprintf("collector-%d", n))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // includes a first build
	defer cancel()
	c, err := stack.StartCollector(ctx, stack.CollectorOptions{Dir: logDir, Configs: []string{cfg},
		GRPCAddr: addrs[0], HTTPAddr: addrs[1], PromAddr: addrs[2], TelemetryAddr: addrs[3]})
	if err != nil {
		t.Fatalf("start the collector: %v", err)
	}
	return c
}

// churner creates a queue, fills it and drops it again, every few
// seconds, recording what it did and when.
type churner struct {
	pool *pgxpool.Pool
	life time.Duration

	mu      sync.Mutex
	queues  map[string]*churnQueue
	alive   []string
	created int
	dropped int
	failed  int
}

func (c *churner) step(ctx context.Context, i int) {
	name := fmt.Sprintf("churn_%05d", i)
	q := &churnQueue{n: int64(1 + i%5), created: time.Now()}
	c.mu.Lock()
	c.queues[name] = q
	c.alive = append(c.alive, name)
	c.mu.Unlock()
	exec := func(sql string, args ...any) bool {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.pool.Exec(ctx, sql, args...)
		if err != nil {
			c.mu.Lock()
			q.uncertain = true
			c.failed++
			c.mu.Unlock()
		}
		return err == nil
	}
	if exec(`SELECT pgmq.create($1)`, name) {
		c.mu.Lock()
		c.created++
		c.mu.Unlock()
		start := time.Now()
		exec(`SELECT pgmq.send_batch($1, array_fill('{}'::jsonb, ARRAY[$2::int]))`, name, q.n)
		c.mu.Lock()
		q.sendStart, q.sendEnd = start, time.Now()
		c.mu.Unlock()
	}
	c.dropOld(ctx, time.Now().Add(-c.life))
}

// dropOld drops the queues created before cutoff (a failed drop is tried
// again next time).
func (c *churner) dropOld(ctx context.Context, cutoff time.Time) {
	c.mu.Lock()
	var due []string
	for _, name := range c.alive {
		if c.queues[name].created.Before(cutoff) {
			due = append(due, name)
		}
	}
	c.mu.Unlock()
	for _, name := range due {
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.pool.Exec(dctx, `SELECT pgmq.drop_queue($1)`, name)
		cancel()
		c.mu.Lock()
		q := c.queues[name]
		if err != nil {
			q.uncertain = true
			c.failed++
		} else {
			q.dropStart, q.dropEnd = start, time.Now()
			c.dropped++
			for i, a := range c.alive {
				if a == name {
					c.alive = append(c.alive[:i], c.alive[i+1:]...)
					break
				}
			}
		}
		c.mu.Unlock()
	}
}

// TestChurnSoak runs three replicas of the example orchestrator with load
// against a PostgreSQL cluster of its own, exporting through the real
// Collector, while queues are created and dropped every few seconds, the
// sampling replica is killed (SIGKILL) and another frozen (SIGSTOP),
// PostgreSQL restarts and the Collector restarts. Every queue depth the
// Collector delivers must equal count(*) of its queue at some moment of
// the sample's interval, or be absent with a known cause (the failure
// counted, a takeover, the Collector down); no two replicas report depth
// in the same interval; no lease is left once the replicas stop. Memory
// and goroutine slopes are logged. PGMQOTEL_CHURN sets the duration (3m by
// default; scripts/soak.sh runs an hour), PGMQOTEL_CHURN_REPORT a file for
// the report.
func TestChurnSoak(t *testing.T) {
	plan := newChurnPlan(soakDurationFrom(t))
	dir := t.TempDir()
	cluster := pgcluster.Start(t, pgcluster.Options{})
	db := pgmqtest.NewAt(t, cluster.URL(""))
	sink := startDepthSink(t)
	addrs := []string{freeLoopbackAddr(t), freeLoopbackAddr(t), freeLoopbackAddr(t), freeLoopbackAddr(t)}
	collector := soakCollector(t, dir, sink.addr, addrs, 0)
	t.Cleanup(func() { _ = collector.Stop(context.Background()) })
	bin := buildOrchestrator(t)

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	var replicas []*replica
	for i := range 3 {
		name := fmt.Sprintf("replica-%d", i+1)
		r := &replica{name: name, bin: bin, logPath: filepath.Join(dir, name+".log"),
			args: []string{"-queue", busyQueue, "-processors", "2", "-rate", "4", "-work", "100ms",
				"-fail-rate", "0.05", "-vt", "3s", "-summary", "0", "-grace", "2s", "-health-addr", "127.0.0.1:0"},
			env: append(append([]string(nil), env...),
				"DATABASE_URL="+db.URL,
				"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+addrs[0], "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_INSECURE=true",
				fmt.Sprintf("OTEL_METRIC_EXPORT_INTERVAL=%d", plan.interval.Milliseconds()), "OTEL_METRIC_EXPORT_TIMEOUT=5000",
				"OTEL_TRACES_EXPORTER=none", "OTEL_SERVICE_NAME=orchestrator", "OTEL_RESOURCE_ATTRIBUTES=service.instance.id="+name)}
		if err := r.start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.kill()
			if t.Failed() {
				t.Logf("--- %s log, last lines ---\n%s", r.name, r.logTail(3000))
			}
		})
		replicas = append(replicas, r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	end := start.Add(plan.duration)
	var causes []window
	var events []string
	note := func(format string, args ...any) {
		events = append(events, fmt.Sprintf("%7s  %s", time.Since(start).Round(time.Second), fmt.Sprintf(format, args...)))
	}
	ttl := 3*plan.interval + soakSampleTimeout // otelmetrics' derived lease TTL
	settle := ttl + 2*plan.interval + 3*time.Second

	// Churn and measurements run beside the events.
	ch := &churner{pool: db.Pool, life: plan.churnLife, queues: map[string]*churnQueue{}}
	measured := make([][]usage, len(replicas))
	var bg sync.WaitGroup
	bg.Go(func() {
		tick := time.NewTicker(plan.churnEvery)
		defer tick.Stop()
		for i := 0; i <= int(plan.duration/plan.churnEvery); i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ch.step(ctx, i)
		}
	})
	bg.Go(func() {
		tick := time.NewTicker(plan.measureEvery)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for i, r := range replicas {
				if m, ok := r.measure(ctx); ok {
					measured[i] = append(measured[i], m)
				}
			}
		}
	})

	// sampler returns the replica sampling now, avoiding skip, or nil.
	sampler := func(skip *replica) *replica {
		for _, r := range replicas {
			if r != skip && r.role(ctx) == "sampler" {
				return r
			}
		}
		return nil
	}
	type event struct {
		at time.Duration
		do func()
	}
	var plannedEvents []event
	for _, at := range plan.kills {
		plannedEvents = append(plannedEvents, event{at, func() {
			// The sampler, but never replica-3, which runs the whole soak
			// for the memory and goroutine slopes.
			target := sampler(replicas[2])
			if target == nil {
				target = replicas[0]
			}
			note("SIGKILL %s (sampler: %v)", target.name, target.role(ctx) == "sampler")
			target.kill()
			causes = append(causes, window{time.Now(), time.Now().Add(settle), "takeover after SIGKILL"})
			time.Sleep(5 * time.Second)
			if err := target.start(ctx); err != nil {
				t.Errorf("restart %s: %v", target.name, err)
			}
		}})
	}
	for _, at := range plan.freezes {
		plannedEvents = append(plannedEvents, event{at, func() {
			target := sampler(nil)
			if target == nil {
				target = replicas[1]
			}
			note("SIGSTOP %s for %v (sampler: %v)", target.name, plan.freezeFor, target.role(ctx) == "sampler")
			_ = target.signal(syscall.SIGSTOP)
			causes = append(causes, window{time.Now(), time.Now().Add(settle), "takeover after SIGSTOP"})
			time.Sleep(plan.freezeFor)
			_ = target.signal(syscall.SIGCONT)
			note("SIGCONT %s", target.name)
		}})
	}
	plannedEvents = append(plannedEvents, event{plan.dbRestart, func() {
		note("PostgreSQL restart (fast)")
		from := time.Now()
		cluster.Restart(t, "fast")
		causes = append(causes, window{from, time.Now().Add(2*plan.interval + 5*time.Second), "PostgreSQL restart"})
		note("PostgreSQL up")
	}})
	for i, at := range plan.collectorRestarts {
		plannedEvents = append(plannedEvents, event{at, func() {
			note("Collector stop")
			from := time.Now()
			sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
			_ = collector.Stop(sctx)
			scancel()
			time.Sleep(plan.collectorDown)
			collector = soakCollector(t, dir, sink.addr, addrs, i+1)
			causes = append(causes, window{from, time.Now().Add(2*plan.interval + 3*time.Second), "Collector down"})
			note("Collector up")
		}})
	}
	for len(plannedEvents) > 0 {
		next := 0
		for i, e := range plannedEvents {
			if e.at < plannedEvents[next].at {
				next = i
			}
		}
		e := plannedEvents[next]
		plannedEvents = append(plannedEvents[:next], plannedEvents[next+1:]...)
		time.Sleep(time.Until(start.Add(e.at)))
		e.do()
	}
	time.Sleep(time.Until(end))
	cancel()
	bg.Wait()
	ch.dropOld(context.Background(), time.Now().Add(time.Hour))
	for _, r := range replicas {
		if err := r.stop(30 * time.Second); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	note("replicas stopped (SIGTERM)")
	stopped := time.Now()
	time.Sleep(3 * time.Second) // the Collector's batch and export
	ran := time.Since(start)

	checkSoak(t, soakRun{plan: plan, sink: sink, db: db, churn: ch, causes: causes, events: events,
		replicas: replicas, measured: measured, ran: ran, stopped: stopped, ttl: ttl})
}
