package otelmetrics

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// These tests run the queue sampler in the topologies of issue 10 against
// real servers on loopback ports: PgBouncer (Debian's) in front of the test
// server, a primary with a pg_basebackup standby, a server that ends idle
// sessions. Numbers in the comments are the situations.

// bouncedDB is a test database with one queue and PgBouncer in front.
type bouncedDB struct {
	db      *pgmqtest.DB
	bouncer *pgbouncer.Bouncer
	client  *pgmqclient.Client // direct
}

func newBouncedDB(t *testing.T, opts pgbouncer.Options) *bouncedDB {
	t.Helper()
	db := pgmqtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.Target = u.Host
	b := pgbouncer.Start(t, opts)
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(context.Background(), "jobs"); err != nil {
		t.Fatal(err)
	}
	return &bouncedDB{db: db, bouncer: b, client: c}
}

// poolOf opens a pool with cfg (the application's), closed at the end.
func poolOf(t *testing.T, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func parsePool(t *testing.T, dsn string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// holder reads the election lease of m's sampler directly.
func holder(t *testing.T, dsn string, m *Metrics) queuesampler.Lease {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	l, err := queuesampler.LeaseHolder(context.Background(), conn, sampler(m).ElectionKey())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// 1, 5: with PgBouncer's stock settings as the application's DSN, in
// either pool mode, the sampler connects (it sends no startup parameter
// PgBouncer refuses), elects itself, reports the depth, and a locked queue
// ends at the server's timeout with the connection kept.
func TestSamplerThroughPgBouncer(t *testing.T) {
	for _, mode := range []string{pgbouncer.Session, pgbouncer.Transaction} {
		t.Run(mode, func(t *testing.T) {
			h := setErrorHandler(t)
			bdb := newBouncedDB(t, pgbouncer.Options{Mode: mode})
			sendN(t, bdb.client, "jobs", 3)
			pool := poolOf(t, parsePool(t, bdb.bouncer.URL("", "", bdb.db.Name)))
			const timeout = time.Second
			m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1, SampleTimeout: timeout}))
			got := collect(t, r)
			if v, ok := got.value(MetricQueueDepth, queueAttr("jobs"), visible); !ok || v != 3 {
				t.Fatalf("depth through PgBouncer (%s) = %v %v; errors %v %v", mode, v, ok, got.errorTypes(), handled(h))
			}
			connects := sampler(m).Stats().Connects

			release := lockTable(t, bdb.db.URL, "q_jobs")
			got = timedCollect(t, r, timeout)
			if v := got.mustValue(t, MetricSamplerErrors, attribute.String(AttrErrorType, "timeout")); v != 1 {
				t.Fatalf("timeouts = %v (%v)", v, got.errorTypes())
			}
			if sampler(m).Stats().Connects != connects {
				t.Error("the sampler reconnected: the server-side timeouts did not end the statement first")
			}
			release()
			if v := collect(t, r).mustValue(t, MetricQueueDepth, queueAttr("jobs"), visible); v != 3 {
				t.Fatalf("depth after the lock = %v", v)
			}
		})
	}
}

// 2: a failure whose message changes from one attempt to the next (PgBouncer
// lists refused startup parameters in random order) is reported once: the
// identity of a failure is its operation and type, not its text.
func TestSamplerErrorsDeduplicatedByType(t *testing.T) {
	h := setErrorHandler(t)
	bdb := newBouncedDB(t, pgbouncer.Options{Mode: pgbouncer.Transaction})
	bad := parsePool(t, bdb.bouncer.URL("", "", bdb.db.Name))
	for _, p := range []string{"statement_timeout", "lock_timeout", "search_path", "work_mem", "plan_cache_mode"} {
		bad.ConnConfig.RuntimeParams[p] = "1"
	}
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: bad, MinInterval: -1}))
	const n = 8
	var got collected
	messages := map[string]bool{}
	for range n {
		got = collect(t, r)
	}
	for _, e := range handled(h) {
		messages[e.Error()] = true
	}
	if types := got.errorTypes(); types["08P01"] != n {
		t.Fatalf("error types %v, want %d of 08P01", types, n)
	}
	if errs := handled(h); len(errs) != 1 {
		t.Fatalf("otel.Handle called %d times for %d identical failures: %v", len(errs), n, errs)
	}
}

// 3, 4: two replicas through PgBouncer in transaction mode, sharing its one
// server connection: one sampler at every collection. Both stopped, no
// lease is left behind, and a replica connected directly leads at once.
func TestOneSamplerThroughTransactionPooler(t *testing.T) {
	bdb := newBouncedDB(t, pgbouncer.Options{Mode: pgbouncer.Transaction, Settings: map[string]string{"default_pool_size": "1"}})
	dsn := bdb.bouncer.URL("", "", bdb.db.Name)
	replicas := make([]replica, 2)
	for i := range replicas {
		pool := poolOf(t, parsePool(t, dsn))
		m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1}))
		replicas[i] = replica{m, r}
	}
	leaders := map[int]int{}
	for round := range 20 {
		got := reporting(t, replicas)
		if len(got) != 1 {
			t.Fatalf("round %d: replicas reporting %v, want exactly one", round, got)
		}
		leaders[got[0]]++
	}
	if len(leaders) != 1 {
		t.Fatalf("leadership moved without a cause: %v", leaders)
	}
	for _, rp := range replicas {
		if err := rp.m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if l := holder(t, bdb.db.URL, replicas[0].m); !l.IsZero() {
		t.Fatalf("lease left behind after both replicas closed: %+v", l)
	}
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: bdb.db.Pool.Config()}))
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatal("a direct replica does not lead at its first collection after the others closed")
	}
}

// 6: one replica on the primary, one on a hot standby. Only the primary's
// samples; the standby's says why and reports nothing, and becomes
// eligible when its sampler is pointed at the primary, still one sampler.
func TestSamplerOnStandby(t *testing.T) {
	primary := pgcluster.Start(t, pgcluster.Options{})
	db := pgmqtest.NewAt(t, primary.URL(""))
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(context.Background(), "jobs"); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "jobs", 2)
	// pg_basebackup waits for a spread checkpoint: make it one with
	// nothing left to write.
	if _, err := db.Pool.Exec(context.Background(), "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	standby := primary.Standby(t, pgcluster.Options{})
	standby.WaitReplayed(t, primary)
	standbyPool := poolOf(t, parsePool(t, standby.URL(db.Name)))

	h := setErrorHandler(t)
	onPrimary, rp := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	onStandby, rs := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: standbyPool.Config(), MinInterval: -1}))
	for range 3 {
		if v := collect(t, rp).mustValue(t, MetricQueueDepth, queueAttr("jobs"), visible); v != 2 {
			t.Fatalf("primary's depth = %v", v)
		}
		got := collect(t, rs)
		if pts := got.points(MetricQueueDepth); len(pts) != 0 {
			t.Fatalf("the standby's replica reports: %v", pts)
		}
		if n := got.samplerErrors(); n != 0 {
			t.Fatalf("a replica on a standby counts failures: %v", got.errorTypes())
		}
	}
	if s := onStandby.Snapshot(context.Background()).Databases[0]; s.Role != queuesampler.RoleReadOnly || s.Reason != "read_only" {
		t.Fatalf("standby replica's sampler: %+v", s)
	}
	if errs := handled(h); len(errs) != 1 {
		t.Fatalf("otel.Handle calls: %v, want the read-only notice once", errs)
	}
	_ = onPrimary

	// Pointed at the primary, the standby's replica stands too.
	eligible, re := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	replicas := []replica{{onPrimary, rp}, {eligible, re}}
	if got := reporting(t, replicas); len(got) != 1 {
		t.Fatalf("reporting: %v", got)
	}
	if err := onPrimary.Close(); err != nil {
		t.Fatal(err)
	}
	if v := collect(t, re).mustValue(t, MetricQueueDepth, queueAttr("jobs"), visible); v != 2 {
		t.Fatalf("the standby replica's depth, sampled on the primary = %v", v)
	}
}

// 10: a health check with a short budget while a queue is locked returns
// within its budget, and its cancel kills neither the sampler's session
// nor its term.
func TestHealthCheckCancelKeepsSession(t *testing.T) {
	db := pgmqtest.New(t)
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(context.Background(), "jobs"); err != nil {
		t.Fatal(err)
	}
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: 3 * time.Second}))
	collect(t, r)
	connects := sampler(m).Stats().Connects
	term := holder(t, db.URL, m)
	release := lockTable(t, db.URL, "q_jobs")

	const budget = 800 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	start := time.Now()
	s := m.Snapshot(ctx)
	cancel()
	if took := time.Since(start); took > budget+timeoutSlack {
		t.Fatalf("Snapshot took %v with a budget of %v", took, budget)
	}
	// A sample may finish within the budget (the locked queue costs its
	// lock timeout, pgmqclient.DefaultDepthLockTimeout), but never with a
	// depth for the locked queue.
	if q, ok := s.Databases[0].Queues["jobs"]; len(s.Databases) == 0 || ok && q.Error == "" && s.Databases[0].SampledAt.After(start) {
		t.Fatalf("snapshot during the lock: %+v, jobs %+v", s.Databases, s.Databases[0].Queues["jobs"])
	}
	release()
	// The sample the health check started finishes on its own.
	eventually(t, hangGuard, "the sample started by the health check to finish", func() bool { return !sampler(m).Stats().Sampling })
	if sampler(m).Stats().Connects != connects {
		t.Fatal("the health check's cancel closed the sampler's connection")
	}
	if now := holder(t, db.URL, m); now.LeaderID != term.LeaderID || !now.ElectedAt.Equal(term.ElectedAt) {
		t.Fatalf("term changed: %+v -> %+v", term, now)
	}
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatal("no depth after the health check")
	}
}

// 11: a password supplied by BeforeConnect (IAM tokens) reaches the
// sampler's connection too, and AfterConnect runs on it.
func TestSamplerConnectsAsThePool(t *testing.T) {
	const password = "token-7f3a"
	bdb := newBouncedDB(t, pgbouncer.Options{
		Mode: pgbouncer.Session, AuthType: "md5", ServerUser: "postgres",
		Users: map[string]string{"app": password},
	})
	cfg := parsePool(t, bdb.bouncer.URL("app", "", bdb.db.Name))
	var before, after atomic.Int64
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		before.Add(1)
		cc.Password = password
		return nil
	}
	cfg.AfterConnect = func(context.Context, *pgx.Conn) error {
		after.Add(1)
		return nil
	}
	pool := poolOf(t, cfg)
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatalf("the pool itself: %v", err)
	}
	h := setErrorHandler(t)
	b0, a0 := before.Load(), after.Load()
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1}))
	got := collect(t, r)
	if _, ok := got.value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatalf("no depth with a BeforeConnect password: %v %v", got.errorTypes(), handled(h))
	}
	if before.Load() != b0+1 || after.Load() != a0+1 {
		t.Fatalf("hooks ran %d/%d times for the sampler's connection, want 1/1", before.Load()-b0, after.Load()-a0)
	}
}

// 12: the server ends idle sessions sooner than the collection interval:
// the dead connection is replaced at once, and no collection fails.
func TestIdleSessionTimeoutRetriedAtOnce(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db.Name}.Sanitize()+" SET idle_session_timeout = '200ms'"); err != nil {
		t.Fatal(err)
	}
	h := setErrorHandler(t)
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	for i := range 3 {
		got := collect(t, r)
		if _, ok := got.value(MetricQueueDepth, queueAttr("jobs"), visible); !ok || got.samplerErrors() != 0 {
			t.Fatalf("collection %d: depth present %v, errors %v (%v)", i, ok, got.errorTypes(), handled(h))
		}
		if n := sampler(m).Stats().Connects; n != int64(i+1) {
			t.Fatalf("collection %d: %d connections opened, want %d (one per idle timeout)", i, n, i+1)
		}
		// The server ends the idle session before the next collection.
		eventually(t, hangGuard, "the server to end the idle session", func() bool {
			var n int
			if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", queuesampler.AppName).Scan(&n); err != nil {
				return false // the pool's own connections die idle too
			}
			return n == 0
		})
	}
}
