package queuedepth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// fillQueue inserts n visible messages straight into a queue table: the
// fastest way to build a large backlog for depth tests and benchmarks.
func fillQueue(tb testing.TB, db *pgmqtest.DB, queue string, n int) {
	tb.Helper()
	table := pgx.Identifier{"pgmq", "q_" + queue}.Sanitize()
	if _, err := db.Pool.Exec(context.Background(),
		`INSERT INTO `+table+` (vt, message) SELECT now() - interval '1 second', jsonb_build_object('i', g) FROM generate_series(1, $1::int) AS g`, n); err != nil {
		tb.Fatalf("fill %s: %v", queue, err)
	}
}

func trueDepth(tb testing.TB, db *pgmqtest.DB, queue string) int64 {
	tb.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{"pgmq", "q_" + queue}.Sanitize()).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// waitForStatistics polls until PostgreSQL's live-row statistics of each
// queue table are within 0.1 % of the truth.
func waitForStatistics(tb testing.TB, db *pgmqtest.DB, queues ...string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range queues {
		want := trueDepth(tb, db, q)
		for {
			var live int64
			if err := db.Pool.QueryRow(context.Background(),
				`SELECT coalesce(n_live_tup, 0) FROM pg_stat_user_tables WHERE schemaname = 'pgmq' AND relname = $1`, "q_"+q).Scan(&live); err != nil {
				tb.Fatal(err)
			}
			if math.Abs(float64(live-want)) <= float64(want)/1000 {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("statistics of %s not current: n_live_tup %d, count %d", q, live, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// analyze runs ANALYZE on queue tables, as autovacuum would.
func analyze(tb testing.TB, db *pgmqtest.DB, queues ...string) {
	tb.Helper()
	for _, q := range queues {
		if _, err := db.Pool.Exec(context.Background(), "ANALYZE "+pgx.Identifier{"pgmq", "q_" + q}.Sanitize()); err != nil {
			tb.Fatal(err)
		}
	}
}

func depthOf(t *testing.T, ds []queuedepth.Queue, queue string) queuedepth.Queue {
	t.Helper()
	for _, d := range ds {
		if d.Name == queue {
			return d
		}
	}
	t.Fatalf("queue %s not in sample %+v", queue, ds)
	return queuedepth.Queue{}
}

func TestSampleDepthsExactAtOrBelowThreshold(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"empty", "below", "at"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	fillQueue(t, db, "below", 99)
	fillQueue(t, db, "at", 100)
	if _, err := c.Read(ctx, "at", time.Minute, 7); err != nil {
		t.Fatal(err)
	}
	waitForStatistics(t, db, "below", "at")

	ds, err := sampleDepths(ctx, c, queuedepth.Options{ExactCountThreshold: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("sampled %d queues, want 3: %+v", len(ds), ds)
	}
	for _, q := range []string{"empty", "below", "at"} {
		d := depthOf(t, ds, q)
		if want := trueDepth(t, db, q); d.Depth != want || d.Estimated() {
			t.Errorf("%s: depth %d (estimated %v), want exactly count(*) = %d", q, d.Depth, d.Estimated(), want)
		}
		if d.Visible+d.Invisible != d.Depth {
			t.Errorf("%s: visible %d + invisible %d != depth %d", q, d.Visible, d.Invisible, d.Depth)
		}
	}
	if d := depthOf(t, ds, "at"); d.Invisible != 7 || d.TotalSent != 100 || d.OldestAge <= 0 {
		t.Errorf("at: %+v, want 7 invisible, 100 sent, a positive oldest age", d)
	}
	if d := depthOf(t, ds, "empty"); d.OldestAge != 0 || d.TotalSent != 0 {
		t.Errorf("empty: %+v, want zero age and zero sent", d)
	}
}

func TestSampleDepthsEstimatesAboveThreshold(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "deep"); err != nil {
		t.Fatal(err)
	}
	// Deeper than the id sample's 16,384 lookups, so that the depth is an
	// estimate and not an exhaustive lookup.
	fillQueue(t, db, "deep", 40_000)
	waitForStatistics(t, db, "deep")
	analyze(t, db, "deep")
	ds, err := sampleDepths(ctx, c, queuedepth.Options{Queues: []string{"deep"}, ExactCountThreshold: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d := depthOf(t, ds, "deep")
	if !d.Estimated() || d.VisibleMethod != queuedepth.MethodEstimate || d.InvisibleMethod != queuedepth.MethodCount {
		t.Fatalf("depth above the threshold: %+v, want an estimated visible and a counted invisible figure", d)
	}
	want := trueDepth(t, db, "deep")
	if e := math.Abs(float64(d.Depth-want)) / float64(want); e > 0.01 {
		t.Fatalf("estimate %d vs count %d: error %.2f%%, want within 1%%", d.Depth, want, e*100)
	}
}

// Statistics that lag behind a fresh backlog never hide it: with no
// statistics and no planner estimate, the ids are looked up, which for a
// span this small is a count.
func TestSampleDepthsCountWhenStatisticsLag(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	c := pgmqclient.New(tx) // statistics are reported at commit, so inside the transaction they lag
	if err := c.CreateQueue(ctx, "fresh"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pgmq.q_fresh (vt, message) SELECT now(), '{}' FROM generate_series(1, 500)`); err != nil {
		t.Fatal(err)
	}
	ds, err := sampleDepths(ctx, c, queuedepth.Options{ExactCountThreshold: 100})
	if err != nil {
		t.Fatal(err)
	}
	if d := depthOf(t, ds, "fresh"); d.Err != nil || d.Depth != 500 || d.Method != queuedepth.MethodCount {
		t.Fatalf("%+v: want 500, counted", d)
	}
}

func TestSampleDepthsValidatesBeforeSQL(t *testing.T) {
	for _, opts := range []queuedepth.Options{
		{Queues: []string{"ok", "bad;name"}},
		{Queues: []string{""}},
	} {
		if _, err := queuedepth.New(opts); !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
			t.Errorf("%v: %v, want ErrInvalidQueueName", opts.Queues, err)
		}
	}
	for _, th := range []int64{-1, queuedepth.MaxExactCountThreshold + 1, math.MaxInt64} {
		if _, err := queuedepth.New(queuedepth.Options{ExactCountThreshold: th}); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
			t.Errorf("threshold %d: %v, want ErrInvalidArgument", th, err)
		}
	}
}

func TestSampleDepthsMatchesPGMQMetrics(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for i := range 3 {
		q := fmt.Sprintf("cmp_%d", i)
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
		fillQueue(t, db, q, 10*(i+1))
		if _, err := c.Read(ctx, q, time.Minute, i); i > 0 && err != nil {
			t.Fatal(err)
		}
	}
	ds, err := sampleDepths(ctx, c, queuedepth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.MetricsAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		d := depthOf(t, ds, m.Queue)
		if d.Depth != m.Length || d.Visible != m.VisibleLength || d.TotalSent != m.TotalMessages {
			t.Errorf("%s: sample %+v, PGMQ metrics %+v", m.Queue, d, m)
		}
	}
}

// boundSampler is a Sampler bound to one database handle, as the tests
// sample it again and again: a connection of its own (KeepPrepared, as
// queuesampler runs it) or a pool.
type boundSampler struct {
	s      *queuedepth.Sampler
	sample func(context.Context, *queuedepth.Sampler) ([]queuedepth.Queue, error)
}

func (b *boundSampler) Sample(ctx context.Context) ([]queuedepth.Queue, error) {
	return b.sample(ctx, b.s)
}

// newSampler binds a Sampler with opts to db, a *pgx.Conn, a pgx.Tx or a
// *pgxpool.Pool.
func newSampler(db any, opts queuedepth.Options) (*boundSampler, error) {
	switch d := db.(type) {
	case *pgx.Conn:
		opts.KeepPrepared = true
		s, err := queuedepth.New(opts)
		return &boundSampler{s: s, sample: func(ctx context.Context, s *queuedepth.Sampler) ([]queuedepth.Queue, error) {
			return s.Sample(ctx, d)
		}}, err
	case pgx.Tx:
		s, err := queuedepth.New(opts)
		return &boundSampler{s: s, sample: func(ctx context.Context, s *queuedepth.Sampler) ([]queuedepth.Queue, error) {
			return s.Sample(ctx, d.Conn())
		}}, err
	case *pgxpool.Pool:
		s, err := queuedepth.New(opts)
		return &boundSampler{s: s, sample: func(ctx context.Context, s *queuedepth.Sampler) ([]queuedepth.Queue, error) {
			return s.SamplePool(ctx, d)
		}}, err
	}
	panic(fmt.Sprintf("newSampler: %T", db))
}

// sampleDepths takes one sample with opts on the client's pool.
func sampleDepths(ctx context.Context, c *pgmqclient.Client, opts queuedepth.Options) ([]queuedepth.Queue, error) {
	s, err := newSampler(c.DB(), opts)
	if err != nil {
		return nil, err
	}
	return s.Sample(ctx)
}

// depthSampler opens a connection of its own to url (closed when the test
// ends) and a sampler bound to it, as queuesampler runs one.
func depthSampler(tb testing.TB, url string, opts queuedepth.Options) (*pgx.Conn, *boundSampler) {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	s, err := newSampler(conn, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return conn, s
}

// setup runs the test in parallel on a fresh database holding the given
// queues.
func setup(t *testing.T, queues ...string) (context.Context, *pgmqclient.Client, *pgmqtest.DB) {
	t.Helper()
	t.Parallel()
	db := pgmqtest.New(t)
	ctx := t.Context()
	c := pgmqclient.New(db.Pool)
	for _, q := range queues {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatalf("create queue %q: %v", q, err)
		}
	}
	return ctx, c, db
}

// sendN sends n messages {"n": i}.
func sendN(t *testing.T, ctx context.Context, c *pgmqclient.Client, queue string, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.Send(ctx, queue, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// caps is Capabilities that fails the test on error.
func caps(t *testing.T, ctx context.Context, c *pgmqclient.Client) *pgmqclient.Capabilities {
	t.Helper()
	cs, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
