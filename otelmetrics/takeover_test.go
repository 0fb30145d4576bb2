package otelmetrics

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// These tests make the replica holding the sampler election useless in
// the ways of issue 10 (situations 7, 8 and 9) and check, at an OTLP
// endpoint, that another replica's queue depth arrives, and that no depth
// point of the old holder is stamped after the new holder's first one: one
// sampler at a time, as the backend sees it. Intervals and the lease TTL
// are short here; takeoverTimings measures them at production settings.

// replicaAttr tells the replicas' exports apart at the endpoint.
const replicaAttr = "test.replica"

// takeoverSettings are a run's timings.
type takeoverSettings struct {
	interval time.Duration // export interval
	ttl      time.Duration // election lease; 0 derives it from interval
	timeout  time.Duration // sample timeout
}

var fastTakeover = takeoverSettings{interval: 100 * time.Millisecond, ttl: time.Second, timeout: 300 * time.Millisecond}

// depthPoint is one pgmq.queue.depth point received, by replica.
type depthPoint struct {
	replica string
	at      time.Time // the point's timestamp: when it was collected
	arrived int       // index of the export request
}

// depthPoints lists the depth points received so far.
func (s *otlpSink) depthPoints() []depthPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []depthPoint
	for i, req := range s.reqs {
		for _, rm := range req.GetResourceMetrics() {
			var replica string
			for _, kv := range rm.GetResource().GetAttributes() {
				if kv.GetKey() == replicaAttr {
					replica = kv.GetValue().GetStringValue()
				}
			}
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() != MetricQueueDepth {
						continue
					}
					for _, dp := range m.GetGauge().GetDataPoints() {
						out = append(out, depthPoint{replica: replica, at: time.Unix(0, int64(dp.GetTimeUnixNano())), arrived: i})
					}
				}
			}
		}
	}
	return out
}

// firstDepth returns when replica's first depth point was collected.
func (s *otlpSink) firstDepth(replica string) (time.Time, bool) {
	for _, p := range s.depthPoints() {
		if p.replica == replica {
			return p.at, true
		}
	}
	return time.Time{}, false
}

// exportsFrom counts the export requests from replica.
func (s *otlpSink) exportsFrom(replica string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, req := range s.reqs {
		for _, rm := range req.GetResourceMetrics() {
			for _, kv := range rm.GetResource().GetAttributes() {
				if kv.GetKey() == replicaAttr && kv.GetValue().GetStringValue() == replica {
					n++
				}
			}
		}
	}
	return n
}

// mustNotOverlap fails when a depth point of from was collected after the
// first one of to.
func mustNotOverlap(t *testing.T, s *otlpSink, from, to string) {
	t.Helper()
	first, ok := s.firstDepth(to)
	if !ok {
		t.Fatalf("no depth from %s", to)
	}
	for _, p := range s.depthPoints() {
		if p.replica == from && !p.at.Before(first) {
			t.Fatalf("%s reported depth collected at %v, after %s's first at %v: two samplers at once", from, p.at, to, first)
		}
	}
}

// startReplica runs a replica in this process: a MeterProvider exporting
// to endpoint and Metrics sampling through pool.
func startReplica(t *testing.T, name, endpoint string, pool *pgxpool.Pool, st takeoverSettings) (*sdkmetric.MeterProvider, *Metrics) {
	t.Helper()
	p, opts := newOTLPMeterProvider(t, st.interval,
		[]otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure(),
			otlpmetricgrpc.WithTimeout(max(st.interval, 200*time.Millisecond))},
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String(replicaAttr, name))))
	m, err := New(append(opts, WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1,
		SampleTimeout: st.timeout, ElectionTTL: st.ttl}))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		_ = m.Close()
	})
	return p, m
}

// Environment of a replica process (TestReplicaProcess).
const (
	envReplicaDSN      = "PGMQOTEL_TEST_REPLICA_DSN"
	envReplicaName     = "PGMQOTEL_TEST_REPLICA_NAME"
	envReplicaEndpoint = "PGMQOTEL_TEST_REPLICA_ENDPOINT"
	envReplicaInterval = "PGMQOTEL_TEST_REPLICA_INTERVAL_MS"
	envReplicaTTL      = "PGMQOTEL_TEST_REPLICA_TTL_MS"
	envReplicaTimeout  = "PGMQOTEL_TEST_REPLICA_TIMEOUT_MS"
)

// TestReplicaProcess is not a test: it is the body of a replica process
// that startReplicaProcess runs (this test binary, again), so that the
// process can be frozen and killed. It runs until it is killed.
func TestReplicaProcess(t *testing.T) {
	dsn := os.Getenv(envReplicaDSN)
	if dsn == "" {
		t.Skip("runs only as a replica process")
	}
	ms := func(k string) time.Duration {
		n, _ := strconv.Atoi(os.Getenv(k))
		return time.Duration(n) * time.Millisecond
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	startReplica(t, os.Getenv(envReplicaName), os.Getenv(envReplicaEndpoint), pool,
		takeoverSettings{interval: ms(envReplicaInterval), ttl: ms(envReplicaTTL), timeout: ms(envReplicaTimeout)})
	select {}
}

// startReplicaProcess starts a replica in a process of its own, killed at
// the end of the test.
func startReplicaProcess(t *testing.T, name, endpoint, dsn string, st takeoverSettings) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envReplicaDSN+"="+dsn, envReplicaName+"="+name, envReplicaEndpoint+"="+endpoint,
		envReplicaInterval+"="+strconv.FormatInt(st.interval.Milliseconds(), 10),
		envReplicaTTL+"="+strconv.FormatInt(st.ttl.Milliseconds(), 10),
		envReplicaTimeout+"="+strconv.FormatInt(st.timeout.Milliseconds(), 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("replica %s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// takeoverDB is a database with one queue holding messages.
func takeoverDB(t *testing.T) *pgmqtest.DB {
	t.Helper()
	db := pgmqtest.New(t)
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(context.Background(), "jobs"); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "jobs", 2)
	return db
}

// A holder case: how to start the holder, and how to make it useless.
type holderCase struct {
	name string
	// start runs holder "A" against db and the sink, and returns the
	// fault to inflict on it.
	start func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) (fault func())
}

var holderCases = []holderCase{
	{
		// 7: a proxy in front of the holder stops forwarding but keeps its
		// sockets open, so the holder's session looks alive to everyone.
		name: "proxy stops forwarding",
		start: func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) func() {
			u, _ := url.Parse(db.URL)
			p, err := faultproxy.Listen(u.Host)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			u.Host = p.Addr()
			pool := poolOf(t, parsePool(t, u.String()))
			startReplica(t, "A", sink.addr, pool, st)
			return func() { _ = p.Blackhole() }
		},
	},
	{
		// 8: the holder process is frozen.
		name: "holder frozen (SIGSTOP)",
		start: func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) func() {
			cmd := startReplicaProcess(t, "A", sink.addr, db.URL, st)
			return func() { _ = cmd.Process.Signal(syscall.SIGSTOP) }
		},
	},
	{
		// kill -9 of the holder process (held before issue 10 too).
		name: "holder killed (SIGKILL)",
		start: func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) func() {
			cmd := startReplicaProcess(t, "A", sink.addr, db.URL, st)
			return func() { _ = cmd.Process.Kill() }
		},
	},
	{
		// A clean stop: Close releases the lease.
		name: "holder stops cleanly (Close)",
		start: func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) func() {
			p, m := startReplica(t, "A", sink.addr, db.Pool, st)
			return func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = p.Shutdown(ctx)
				_ = m.Close()
			}
		},
	},
	{
		// 3, 8: the holder process, behind PgBouncer in transaction mode,
		// is killed; PgBouncer keeps its server connections.
		name: "holder behind PgBouncer (transaction) killed",
		start: func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) func() {
			u, _ := url.Parse(db.URL)
			b := pgbouncer.Start(t, pgbouncer.Options{Target: u.Host, Mode: pgbouncer.Transaction})
			cmd := startReplicaProcess(t, "A", sink.addr, b.URL("", "", db.Name), st)
			return func() { _ = cmd.Process.Kill() }
		},
	},
	{
		// 9: the holder reaches PostgreSQL but not the Collector. It leads
		// until its exports are seen to fail; it never reaches the sink, so
		// it starts with a working endpoint whose server then goes away.
		name: "holder cannot export",
		start: func(t *testing.T, db *pgmqtest.DB, sink *otlpSink, st takeoverSettings) func() {
			own := startSink(t)
			fwd, err := faultproxy.Listen(own.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = fwd.Close() })
			startReplica(t, "A", fwd.Addr(), db.Pool, st)
			// What reaches A's own endpoint is seen at the shared sink too.
			own.relay(sink)
			return fwd.Cut
		},
	},
}

// relay makes s pass on to other what it receives.
func (s *otlpSink) relay(other *otlpSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.others = append(s.others, other)
}

// runTakeover starts holder A, waits until A's depth arrives, starts B,
// makes A useless and returns how long B's depth took to arrive after the
// fault. It fails the test if A and B ever sampled at once.
func runTakeover(t *testing.T, hc holderCase, st takeoverSettings, bound time.Duration) time.Duration {
	t.Helper()
	setErrorHandler(t)
	db := takeoverDB(t)
	sink := startSink(t)
	fault := hc.start(t, db, sink, st)
	eventually(t, hangGuard, "holder A's first depth", func() bool { _, ok := sink.firstDepth("A"); return ok })
	_, b := startReplica(t, "B", sink.addr, db.Pool, st)
	// B is a follower while A leads.
	eventually(t, hangGuard, "B to export", func() bool { return sink.exportsFrom("B") > 2 })
	if _, ok := sink.firstDepth("B"); ok {
		t.Fatal("B reports depth while A leads")
	}
	faultAt := time.Now()
	fault()
	eventually(t, bound, "B's depth after the fault", func() bool { _, ok := sink.firstDepth("B"); return ok })
	took := time.Since(faultAt)
	mustNotOverlap(t, sink, "A", "B")
	if s := b.Snapshot(context.Background()).Databases[0]; s.Role != queuesampler.RoleSampler {
		t.Fatalf("B's role after the takeover: %+v", s)
	}
	return took
}

func TestTakeover(t *testing.T) {
	for _, hc := range holderCases {
		t.Run(hc.name, func(t *testing.T) {
			took := runTakeover(t, hc, fastTakeover, hangGuard)
			t.Logf("B's depth arrived %v after the fault (export interval %v, lease TTL %v)", took.Round(time.Millisecond), fastTakeover.interval, fastTakeover.ttl)
		})
	}
}

// A frozen holder that wakes reports no depth: its term ended while it
// slept, whatever it had collected before.
func TestFrozenHolderWakesAsFollower(t *testing.T) {
	setErrorHandler(t)
	db := takeoverDB(t)
	sink := startSink(t)
	cmd := startReplicaProcess(t, "A", sink.addr, db.URL, fastTakeover)
	eventually(t, hangGuard, "A's first depth", func() bool { _, ok := sink.firstDepth("A"); return ok })
	startReplica(t, "B", sink.addr, db.Pool, fastTakeover)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, hangGuard, "B's depth", func() bool { _, ok := sink.firstDepth("B"); return ok })
	before := sink.exportsFrom("A")
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, hangGuard, "A to export again", func() bool { return sink.exportsFrom("A") > before+5 })
	mustNotOverlap(t, sink, "A", "B")
}

// takeoverTimings measures the takeover of every case at production-like
// settings (2 s export interval, the derived lease TTL): run by
// scripts/takeover.sh with PGMQOTEL_TAKEOVER=1.
func TestTakeoverTimings(t *testing.T) {
	if os.Getenv("PGMQOTEL_TAKEOVER") == "" {
		t.Skip("set PGMQOTEL_TAKEOVER=1 to measure takeover times (scripts/takeover.sh)")
	}
	st := takeoverSettings{interval: 2 * time.Second, timeout: queuesampler.DefaultSampleTimeout}
	st.ttl = 3*st.interval + st.timeout
	runs, _ := strconv.Atoi(os.Getenv("PGMQOTEL_TAKEOVER_RUNS"))
	runs = max(runs, 1)
	for _, hc := range holderCases {
		t.Run(hc.name, func(t *testing.T) {
			var all []time.Duration
			for range runs {
				all = append(all, runTakeover(t, hc, st, 2*time.Minute).Round(10*time.Millisecond))
			}
			fmt.Printf("TAKEOVER\t%s\t%v\t(export interval %v, lease TTL %v)\n", hc.name, all, st.interval, st.ttl)
		})
	}
}
