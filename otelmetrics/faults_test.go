package otelmetrics

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// These tests put a fault proxy between the module and a real PostgreSQL
// and check what the telemetry does while the database is slow, silent or
// gone, and after it comes back. They change the global error handler, so
// none of them runs in parallel.

// faultTimeout is the sample timeout of the fault tests: short, so that a
// collection blocked by a fault ends quickly.
const faultTimeout = 500 * time.Millisecond

// timeoutSlack is what "returns within its timeout" allows on top of the
// timeout: scheduling, the race detector and a loaded CI machine.
const timeoutSlack = time.Second

// faultDB is a test database with PGMQ, reached by the module through a
// fault proxy and by the test directly.
type faultDB struct {
	db     *pgmqtest.DB
	proxy  *faultproxy.Proxy
	pool   *pgxpool.Pool      // through the proxy: what the module uses
	direct *pgmqclient.Client // not through the proxy: the test's view
}

func newFaultDB(t *testing.T) *faultDB {
	t.Helper()
	db := pgmqtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u.Host = p.Addr()
	pool, err := pgxpool.New(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &faultDB{db: db, proxy: p, pool: pool, direct: pgmqclient.New(db.Pool)}
}

// timedCollect collects once and fails the test unless the collection
// returned within the sample timeout plus slack.
func timedCollect(t *testing.T, r sdkmetric.Reader, timeout time.Duration) collected {
	t.Helper()
	start := time.Now()
	got := collect(t, r)
	if elapsed := time.Since(start); elapsed > timeout+timeoutSlack {
		t.Fatalf("collection took %v with a sample timeout of %v", elapsed, timeout)
	}
	return got
}

// samplerErrors is the sum of pgmq.sampler.errors over all error types.
func (c collected) samplerErrors() float64 {
	var n float64
	for _, p := range c.points(MetricSamplerErrors) {
		n += p.value
	}
	return n
}

// errorTypes lists the error.type values of pgmq.sampler.errors.
func (c collected) errorTypes() map[string]float64 {
	out := map[string]float64{}
	for _, p := range c.points(MetricSamplerErrors) {
		v, _ := p.attrs.Value(AttrErrorType)
		out[v.AsString()] = p.value
	}
	return out
}

// mustBeDegraded checks a collection made during a database fault: the
// in-memory metrics are all there and no queue point is.
func (c collected) mustBeDegraded(t *testing.T, pool string) {
	t.Helper()
	if v := c.mustValue(t, MetricProcessorActive, kindAttr("worker")); v != 1 {
		t.Fatalf("processors during the fault = %v, want 1", v)
	}
	for _, name := range []string{MetricConnectionCount, MetricConnectionMax, MetricConnectionUtil, MetricAcquireWaits} {
		if _, ok := c.value(name, attribute.String(AttrPoolName, pool)); !ok {
			t.Fatalf("%s missing during the fault", name)
		}
	}
	for _, name := range []string{MetricQueueDepth, MetricQueueOldestAge, MetricQueueSent} {
		if pts := c.points(name); len(pts) != 0 {
			t.Fatalf("%s reported during the fault: %v", name, pts)
		}
	}
}

// handled returns the errors h received.
func handled(h *countingHandler) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// A database fault: how to cause it and how to heal it.
type dbFault struct {
	name  string
	cause func(*faultproxy.Proxy)
	heal  func(*testing.T, *faultproxy.Proxy)
	// stalls: a sample during the fault waits for its timeout rather than
	// failing at once.
	stalls bool
}

var dbFaults = []dbFault{
	{
		name:   "slow",
		cause:  func(p *faultproxy.Proxy) { p.SetDelay(time.Hour) },
		heal:   func(_ *testing.T, p *faultproxy.Proxy) { p.SetDelay(0) },
		stalls: true,
	},
	{
		name:  "unresponsive",
		cause: func(p *faultproxy.Proxy) { _ = p.Blackhole() },
		heal: func(t *testing.T, p *faultproxy.Proxy) {
			if err := p.Restore(); err != nil {
				t.Fatal(err)
			}
		},
		stalls: true,
	},
	{
		name:  "gone",
		cause: func(p *faultproxy.Proxy) { p.Cut() },
		heal: func(t *testing.T, p *faultproxy.Proxy) {
			if err := p.Restore(); err != nil {
				t.Fatal(err)
			}
		},
	},
}

// collectionsDuringFault is how many collections each fault lasts.
const collectionsDuringFault = 4

// Queue points come back at the very first collection after the fault,
// with the sampler election on (the default) or off: leadership is a lease
// this replica still holds, or takes again as the only candidate, not a
// session that must first be reaped on the server.
func TestDatabaseFaults(t *testing.T) {
	for _, f := range dbFaults {
		for _, election := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/election=%v", f.name, election), func(t *testing.T) {
				testDatabaseFault(t, f, election)
			})
		}
	}
}

func testDatabaseFault(t *testing.T, f dbFault, election bool) {
	h := setErrorHandler(t)
	fdb := newFaultDB(t)
	ctx := context.Background()
	if err := fdb.direct.CreateQueue(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	sendN(t, fdb.direct, "jobs", 3)
	m, r := newTestMetrics(t, WithPool("app", fdb.pool), WithQueueSampler(queuesampler.Config{Conn: fdb.pool.Config(), MinInterval: -1, SampleTimeout: faultTimeout, NoElection: !election}))
	run := m.Processor("worker").Start()
	defer run.Finish()
	q := queueAttr("jobs")

	got := timedCollect(t, r, faultTimeout)
	if v := got.mustValue(t, MetricQueueDepth, q, visible); v != 3 {
		t.Fatalf("depth before the fault = %v, want 3", v)
	}
	if n := got.samplerErrors(); n != 0 {
		t.Fatalf("sampler errors before the fault = %v", n)
	}

	f.cause(fdb.proxy)
	var (
		handledAt []int
		took      []time.Duration
	)
	for i := 1; i <= collectionsDuringFault; i++ {
		start := time.Now()
		got = timedCollect(t, r, faultTimeout)
		took = append(took, time.Since(start).Round(time.Millisecond))
		got.mustBeDegraded(t, "app")
		if n := got.samplerErrors(); n != float64(i) {
			t.Fatalf("sampler errors after %d collections in the fault = %v (%v), want %d", i, n, got.errorTypes(), i)
		}
		handledAt = append(handledAt, h.count())
	}
	types := got.errorTypes()
	t.Logf("collections took %v (sample timeout %v); error types %v; otel.Handle calls after each collection %v", took, faultTimeout, types, handledAt)
	for _, e := range handled(h) {
		t.Logf("handled: %v", e)
	}
	if f.stalls {
		if types["timeout"] == 0 {
			t.Errorf("a stalled database counted no timeout: %v", types)
		}
	} else if types["connection"] != collectionsDuringFault {
		// The open connection breaking is a connection error too.
		t.Errorf("error types of an unreachable database: %v, want only connection", types)
	}
	// Each distinct failure is handed over once: the first collections may
	// see different failures (the open connection breaking, then
	// reconnecting failing), after which the same failure repeats without
	// being reported again.
	if last := handledAt[len(handledAt)-1]; last > 2 || last != handledAt[1] {
		t.Errorf("otel.Handle calls after each collection %v: want at most 2, none after the second collection", handledAt)
	}

	// Messages sent during the fault show after it, on the same Metrics.
	sendN(t, fdb.direct, "jobs", 2)
	f.heal(t, fdb.proxy)
	collections := 0
	for {
		got = timedCollect(t, r, faultTimeout)
		collections++
		if n := got.samplerErrors(); n != collectionsDuringFault {
			t.Fatalf("sampler errors after the fault = %v (%v), want still %d", n, got.errorTypes(), collectionsDuringFault)
		}
		if _, ok := got.value(MetricQueueDepth, q, visible); ok {
			break
		}
		last := sampler(m).Last()
		t.Fatalf("no queue points at the first collection after the fault (role %s %s, error %v)", last.Role, last.Reason, last.Err)
	}
	t.Logf("queue points back at collection %d after the fault", collections)
	if v := got.mustValue(t, MetricQueueDepth, q, visible); v != 5 {
		t.Fatalf("depth after the fault = %v, want 5", v)
	}
	if v := got.mustValue(t, MetricQueueSent, q); v != 5 {
		t.Fatalf("sent after the fault = %v, want 5", v)
	}
	if s := m.Snapshot(ctx); len(s.Databases) == 0 || !s.Databases[0].Healthy || val(s.Databases[0].Queues["jobs"].Depth) != 5 {
		t.Fatalf("snapshot after recovery: sampler %+v queues %v", s.Databases, s.Databases[0].Queues)
	}
}

// While a sample is stuck on the database, processor accounting and the
// in-process reads go on as if nothing happened: they share no lock with
// the sampler. The sampler here has an hour's timeout, so the collection
// stays stuck until the test cancels it, whatever the machine's speed.
func TestProcessorsNeverWaitForTheDatabase(t *testing.T) {
	for _, f := range dbFaults {
		if !f.stalls {
			continue // nothing to be stuck on
		}
		t.Run(f.name, func(t *testing.T) {
			setErrorHandler(t)
			fdb := newFaultDB(t)
			if err := fdb.direct.CreateQueue(context.Background(), "jobs"); err != nil {
				t.Fatal(err)
			}
			m, r := newTestMetrics(t, WithPool("app", fdb.pool), WithQueueSampler(queuesampler.Config{Conn: fdb.pool.Config(), MinInterval: -1, SampleTimeout: time.Hour}))
			collect(t, r) // connected and elected

			f.cause(fdb.proxy)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				var rm metricdata.ResourceMetrics
				done <- r.Collect(ctx, &rm)
			}()
			// The collection is stuck once its statement sits in the proxy.
			eventually(t, hangGuard, "the sampler to be stuck", func() bool {
				return sampler(m).Stats().Sampling && fdb.proxy.Conns() > 0
			})

			kind := m.Processor("worker")
			const n = 10_000
			for i := range n {
				run := kind.Start()
				done := m.ProcessorStarted("other")
				if i%2 == 0 {
					run.Finish()
					done()
				}
			}
			if got := m.ActiveProcessors(); got != n {
				t.Fatalf("ActiveProcessors = %d, want %d", got, n)
			}
			if by := m.ActiveProcessorsByKind(); by["worker"] != n/2 || by["other"] != n/2 {
				t.Fatalf("ActiveProcessorsByKind = %v", by)
			}
			select {
			case err := <-done:
				t.Fatalf("the stuck collection ended early: %v", err)
			default:
			}

			cancel()
			select {
			case <-done:
			case <-time.After(hangGuard):
				t.Fatal("a cancelled collection did not return")
			}
			f.heal(t, fdb.proxy)
		})
	}
}

// A queue table locked by another session (a migration, a VACUUM FULL, an
// operator's LOCK TABLE) costs that queue its points, for the lock
// timeout, and is counted; the other queues are reported (finding 5), and
// the session and its election lock survive.
func TestLockedQueueTableBoundedByTimeout(t *testing.T) {
	setErrorHandler(t)
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"locked", "free"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "locked", 2)
	const timeout = time.Second
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: timeout}))
	run := m.Processor("worker").Start()
	defer run.Finish()
	if v := timedCollect(t, r, timeout).mustValue(t, MetricQueueDepth, queueAttr("locked"), visible); v != 2 {
		t.Fatalf("depth before the lock = %v, want 2", v)
	}
	connects := sampler(m).Stats().Connects

	release := lockTable(t, db.URL, "q_locked")

	for i := 1; i <= 2; i++ {
		start := time.Now()
		got := timedCollect(t, r, timeout)
		t.Logf("collection %d while locked took %v (sample timeout %v)", i, time.Since(start).Round(time.Millisecond), timeout)
		if v := got.mustValue(t, MetricProcessorActive, kindAttr("worker")); v != 1 {
			t.Fatalf("processors while locked = %v", v)
		}
		if _, ok := got.value(MetricQueueDepth, queueAttr("locked"), visible); ok {
			t.Fatalf("points of the locked queue: %v", got.points(MetricQueueDepth))
		}
		if v := got.mustValue(t, MetricQueueDepth, queueAttr("free"), visible); v != 0 {
			t.Fatalf("depth of the free queue while the other is locked = %v, want 0", v)
		}
		if v := got.mustValue(t, MetricSamplerErrors, attribute.String(AttrErrorType, "timeout")); v != float64(i) {
			t.Fatalf("timeouts = %v, want %d (%v)", v, i, got.errorTypes())
		}
	}
	s := m.Snapshot(ctx)
	t.Logf("sampler while locked: %+v", s.Databases)
	if sampler(m).Stats().Connects != connects {
		t.Error("the sampler reconnected: the server's lock_timeout should have ended the statement before the client gave up")
	}

	release()
	got := timedCollect(t, r, timeout)
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("locked"), visible); v != 2 {
		t.Fatalf("depth after the lock = %v, want 2", v)
	}
}

// Queues created, dropped and recreated between two collections are
// reported as they are at each collection, starting from none at all, with
// no failure and no stale point.
func TestQueueChangesBetweenCollections(t *testing.T) {
	h := setErrorHandler(t)
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	q := queueAttr("churn")
	mustHave := func(what string, depth, sent float64) {
		t.Helper()
		got := collect(t, r)
		if n := got.samplerErrors(); n != 0 {
			t.Fatalf("%s: sampler errors %v (%v)", what, got.errorTypes(), handled(h))
		}
		if depth < 0 {
			if pts := got.points(MetricQueueDepth); len(pts) != 0 {
				t.Fatalf("%s: queue points %v, want none", what, pts)
			}
			return
		}
		if v := got.mustValue(t, MetricQueueDepth, q, visible); v != depth {
			t.Fatalf("%s: depth %v, want %v", what, v, depth)
		}
		if v := got.mustValue(t, MetricQueueSent, q); v != sent {
			t.Fatalf("%s: sent %v, want %v", what, v, sent)
		}
	}

	mustHave("no queue yet", -1, 0)
	mustHave("still no queue", -1, 0)
	if err := c.CreateQueue(ctx, "churn"); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "churn", 4)
	mustHave("created", 4, 4)
	mustHave("unchanged", 4, 4)

	if _, err := c.DropQueue(ctx, "churn"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateQueue(ctx, "churn"); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "churn", 1)
	// A new table and sequence under the old name: the new queue's figures.
	mustHave("dropped and recreated", 1, 1)

	if _, err := c.DropQueue(ctx, "churn"); err != nil {
		t.Fatal(err)
	}
	mustHave("dropped", -1, 0)
	if err := c.CreateQueue(ctx, "churn"); err != nil {
		t.Fatal(err)
	}
	mustHave("created again", 0, 0)
	if n := h.count(); n != 0 {
		t.Fatalf("otel.Handle calls: %v", handled(h))
	}
}

// A queue dropped while a sample is running does not fail the sample. The
// sampler is held on another queue's table by a lock while the queue is
// dropped; once the lock goes, its statement finds one table gone and the
// sampler samples the queues that remain.
func TestQueueDroppedDuringSample(t *testing.T) {
	h := setErrorHandler(t)
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"a_stays", "b_dropped"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "a_stays", 2)
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: hangGuard}))
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("b_dropped"), visible); !ok {
		t.Fatal("b_dropped not reported before the drop")
	}

	release := lockTable(t, db.URL, "q_a_stays")
	waiting := func(app, query string) bool {
		var n int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'
			AND ($1 = '' OR application_name = $1) AND query LIKE $2`, app, query).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}

	sampled := make(chan collected, 1)
	go func() { sampled <- collect(t, r) }()
	eventually(t, hangGuard, "the sampler to wait for the lock", func() bool {
		return waiting("pgmqotel-queue-sampler", "%")
	})
	dropped := make(chan error, 1)
	go func() {
		_, err := c.DropQueue(ctx, "b_dropped")
		dropped <- err
	}()
	// The drop either completes (the sampler had not reached the table) or
	// waits for the sampler (it had); both are races a sampler must survive.
	var droppedFirst bool
	eventually(t, hangGuard, "the drop to finish or wait", func() bool {
		select {
		case err := <-dropped:
			if err != nil {
				t.Fatalf("drop: %v", err) // 40P01 here: the sampler deadlocked with the drop
			}
			droppedFirst = true
			return true
		default:
			return waiting("", "%drop_queue%")
		}
	})
	release()
	got := <-sampled
	if !droppedFirst {
		if err := <-dropped; err != nil {
			t.Fatalf("drop: %v", err)
		}
	}
	t.Logf("queue dropped before the sampler reached its table: %v", droppedFirst)
	if n := got.samplerErrors(); n != 0 {
		t.Fatalf("the sample failed: %v (%v)", got.errorTypes(), handled(h))
	}
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("a_stays"), visible); v != 2 {
		t.Fatalf("a_stays = %v, want 2", v)
	}
	_, stillThere := got.value(MetricQueueDepth, queueAttr("b_dropped"))
	if droppedFirst && stillThere {
		t.Fatal("a queue dropped before its table was sampled is reported")
	}
	got = collect(t, r)
	if _, ok := got.value(MetricQueueDepth, queueAttr("b_dropped")); ok || got.samplerErrors() != 0 {
		t.Fatalf("after the drop: b_dropped reported %v, errors %v", ok, got.errorTypes())
	}
}

// lockTable holds an ACCESS EXCLUSIVE lock on pgmq.<table> from another
// session until release is called (or the test ends).
func lockTable(t *testing.T, url, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = locker.Close(ctx) })
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{"pgmq", table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("release the lock on %s: %v", table, err)
			}
		})
	}
	t.Cleanup(release)
	return release
}
