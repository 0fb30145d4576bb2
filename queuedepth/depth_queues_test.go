package queuedepth_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// fillInvisible inserts n messages whose visibility timeout runs for an
// hour, as if read with a long timeout or sent with a delay.
func fillInvisible(tb testing.TB, db *pgmqtest.DB, queue string, n int) {
	tb.Helper()
	table := pgx.Identifier{"pgmq", "q_" + queue}.Sanitize()
	if _, err := db.Pool.Exec(context.Background(),
		`INSERT INTO `+table+` (vt, message) SELECT now() + interval '1 hour', jsonb_build_object('i', g) FROM generate_series(1, $1::int) AS g`, n); err != nil {
		tb.Fatalf("fill %s: %v", queue, err)
	}
}

// Finding 2: a queue whose messages are all invisible reads visible 0,
// counted, not the estimate minus a capped invisible count.
func TestSampleDepthsAllInvisible(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "delayed"); err != nil {
		t.Fatal(err)
	}
	fillInvisible(t, db, "delayed", 30_000)
	waitForStatistics(t, db, "delayed")
	analyze(t, db, "delayed")
	ds, err := sampleDepths(ctx, c, queuedepth.Options{ExactCountThreshold: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d := depthOf(t, ds, "delayed")
	if d.Err != nil || d.Visible != 0 || d.VisibleMethod != queuedepth.MethodCount {
		t.Fatalf("%+v: want visible 0, counted", d)
	}
	if d.Invisible < 29_700 || d.Invisible > 30_300 || d.InvisibleMethod != queuedepth.MethodEstimate {
		t.Fatalf("%+v: want invisible within 1%% of 30,000, estimated", d)
	}
}

// A queue above the threshold whose visible side is small (here 200
// visible behind 900 invisible, threshold 1,000, ids spread wide by a
// purge) has that side counted, not estimated: at or below the threshold
// a figure is exact. The statistics alone (1,100 > 1,001) used to spare the
// count and export 200 as an estimate; stale statistics of the same size
// (a switchover and back) made that estimate 50 times too small.
func TestSampleDepthsSmallVisibleSideCounted(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "mostly_inflight"); err != nil {
		t.Fatal(err)
	}
	fillQueue(t, db, "mostly_inflight", 200)
	fillQueue(t, db, "mostly_inflight", 2500)
	table := pgx.Identifier{"pgmq", "q_mostly_inflight"}.Sanitize()
	if _, err := db.Pool.Exec(ctx, `DELETE FROM `+table+` WHERE msg_id > 200`); err != nil {
		t.Fatal(err)
	}
	fillInvisible(t, db, "mostly_inflight", 900)
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE `+table); err != nil {
		t.Fatal(err)
	}
	waitForStatistics(t, db, "mostly_inflight")
	ds, err := sampleDepths(ctx, c, queuedepth.Options{ExactCountThreshold: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d := depthOf(t, ds, "mostly_inflight")
	if d.Err != nil || d.Visible != 200 || d.VisibleMethod != queuedepth.MethodCount ||
		d.Invisible != 900 || d.InvisibleMethod != queuedepth.MethodCount {
		t.Fatalf("%+v: want visible 200 and invisible 900, both counted", d)
	}
}

// Finding 5: a queue whose table is locked loses its own figures, with an
// error; the others are sampled, in about the lock timeout.
func TestSampleDepthsLockedQueueAlone(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	// More queues than one catalog statement reads, the locked one in the
	// middle of a chunk.
	defer queuedepth.SetCatalogChunk(10)()
	const n = 25
	if _, err := db.Pool.Exec(ctx, `SELECT pgmq.create(format('lk_%s', lpad(g::text, 3, '0'))) FROM generate_series(0, $1::int - 1) AS g`, n); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 12, 24} {
		fillQueue(t, db, fmt.Sprintf("lk_%03d", i), 10)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE pgmq.q_lk_012 IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	conn, s := depthSampler(t, db.URL, queuedepth.Options{ExactCountThreshold: 100, LockTimeout: 50 * time.Millisecond})
	start := time.Now()
	ds, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sample of %d queues, one locked: %v", n, time.Since(start))
	if len(ds) != n {
		t.Fatalf("sampled %d queues, want %d", len(ds), n)
	}
	for _, d := range ds {
		if d.Name == "lk_012" {
			var pgErr *pgconn.PgError
			if !errors.As(d.Err, &pgErr) || pgErr.Code != "55P03" {
				t.Errorf("locked queue: %+v, want lock_not_available", d)
			}
			continue
		}
		want := int64(0)
		if d.Name == "lk_000" || d.Name == "lk_024" {
			want = 10
		}
		if d.Err != nil || d.Depth != want || d.Method != queuedepth.MethodCount {
			t.Errorf("%+v: want %d, counted", d, want)
		}
	}
	// The timeouts were local to the sample's transactions: nothing is
	// left on the session, a dedicated connection's or a pool's.
	var lt string
	if err := conn.QueryRow(ctx, "SHOW lock_timeout", pgx.QueryExecModeSimpleProtocol).Scan(&lt); err != nil || lt != "0" {
		t.Errorf("lock_timeout after the sample: %q, %v; want the session's 0", lt, err)
	}
	if _, err := sampleDepths(ctx, c, queuedepth.Options{LockTimeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for range 4 { // every idle connection of the pool
		if err := db.Pool.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt); err != nil || lt != "0" {
			t.Errorf("lock_timeout of a pool connection after a sample: %q, %v; want 0", lt, err)
		}
	}
}

// Finding 7: a named queue that does not exist is in the result, with an
// error matching ErrQueueNotFound; patterns select queues.
func TestSampleDepthsMissingQueueAndPatterns(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"orders_eu", "orders_us", "orders_tmp", "billing"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := sampleDepths(ctx, c, queuedepth.Options{Queues: []string{"billing", "ghost"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Name != "billing" || ds[0].Err != nil || ds[1].Name != "ghost" || !errors.Is(ds[1].Err, pgmqclient.ErrQueueNotFound) {
		t.Fatalf("named queues: %+v, want billing and ghost (not found)", ds)
	}
	ds, err = sampleDepths(ctx, c, queuedepth.Options{Include: []string{"ORDERS_*"}, Exclude: []string{"*_tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Name)
	}
	if fmt.Sprint(got) != "[orders_eu orders_us]" {
		t.Fatalf("include ORDERS_*, exclude *_tmp: %v", got)
	}
	if _, err := sampleDepths(ctx, c, queuedepth.Options{Include: []string{"["}}); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Fatalf("bad pattern: %v, want ErrInvalidArgument", err)
	}
}

// Finding 3b: the sampler's session keeps no prepared statement per queue
// below the threshold (only its handful of fixed ones), however the set of
// queues changes.
func TestSampleDepthsKeepsNoPreparedStatements(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	conn, s := depthSampler(t, db.URL, queuedepth.Options{})
	for i := range 5 {
		q := fmt.Sprintf("churn_%d", i)
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
		fillQueue(t, db, q, 3)
		if _, err := s.Sample(ctx); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := c.DropQueue(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE name !~ '^pgmqotel_depth_fixed_'`,
		pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d prepared statements left on the sampler's session, want 0", n)
	}
}

// The probe of a queue above the threshold stays prepared, so that a deep
// queue costs no planning; it is deallocated when the queue goes.
func TestSampleDepthsPreparesDeepQueuesOnly(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"deep", "small"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	fillQueue(t, db, "deep", 5000)
	fillQueue(t, db, "small", 5)
	waitForStatistics(t, db, "deep")
	analyze(t, db, "deep")
	conn, s := depthSampler(t, db.URL, queuedepth.Options{ExactCountThreshold: 100})
	prepared := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE name ~ '^pgmqotel_depth_[0-9]+$'`,
			pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 3 {
		ds, err := s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := depthOf(t, ds, "deep"); d.Err != nil || !within1(d.Depth, 5000, 5000) {
			t.Fatalf("deep: %+v", d)
		}
	}
	if n := prepared(); n != 1 {
		t.Fatalf("%d probes prepared, want 1 (the deep queue's)", n)
	}
	if _, err := c.DropQueue(ctx, "deep"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(ctx); err != nil {
		t.Fatal(err)
	}
	if n := prepared(); n != 0 {
		t.Fatalf("%d probes prepared after the deep queue was dropped, want 0", n)
	}
}

// Deep queues are probed together by one prepared statement; a broken one
// (here a column renamed by hand) fails alone, the other is still reported.
func TestSampleDepthsBrokenDeepQueueAlone(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"deep_a", "deep_b"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
		fillQueue(t, db, q, 3000)
	}
	waitForStatistics(t, db, "deep_a", "deep_b")
	analyze(t, db, "deep_a", "deep_b")
	_, s := depthSampler(t, db.URL, queuedepth.Options{ExactCountThreshold: 100})
	if _, err := s.Sample(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE pgmq.q_deep_b RENAME COLUMN vt TO vt_broken`); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if d := depthOf(t, ds, "deep_b"); !errors.As(d.Err, &pgErr) || pgErr.Code != "42703" {
		t.Errorf("broken deep queue: %+v, want undefined_column", d)
	}
	if d := depthOf(t, ds, "deep_a"); d.Err != nil || !within1(d.Depth, 3000, 3000) {
		t.Errorf("deep_a: %+v, want about 3,000", d)
	}
}

// The group probe of deep queues leaves the visible count out of a branch
// unless that queue needed it last time; a queue that needs it (its id
// span below twice the threshold, or more invisible messages than the
// threshold) is counted in every sample all the same: the first by a probe
// of its own, the next ones by its branch. "mid" has too many ids for an
// id sample to count them all: only the visible count makes its 400
// visible messages exact.
func TestSampleDepthsDeepQueueVisibleCounted(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"far", "mid", "mixed"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	fillQueue(t, db, "far", 5000)
	fillInvisible(t, db, "mid", 70_000)
	fillQueue(t, db, "mid", 400)
	fillInvisible(t, db, "mixed", 1200)
	fillQueue(t, db, "mixed", 3000)
	waitForStatistics(t, db, "far", "mid", "mixed")
	for _, q := range []string{"far", "mid", "mixed"} {
		if _, err := db.Pool.Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{"pgmq", "q_" + q}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	_, s := depthSampler(t, db.URL, queuedepth.Options{ExactCountThreshold: 1000})
	for i := range 3 {
		ds, err := s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := depthOf(t, ds, "mid"); d.Err != nil || d.Visible != 400 || d.VisibleMethod != queuedepth.MethodCount ||
			!within1(d.Invisible, 70_000, 70_400) {
			t.Fatalf("sample %d: mid %+v: want 400 visible, counted, and 70,000 invisible", i, d)
		}
		if d := depthOf(t, ds, "far"); d.Err != nil || !within1(d.Depth, 5000, 5000) || d.Invisible != 0 {
			t.Fatalf("sample %d: far %+v: want 5,000 visible", i, d)
		}
		if d := depthOf(t, ds, "mixed"); d.Err != nil || !within1(d.Depth, 4200, 4200) ||
			!within1(d.Visible, 3000, 4200) || !within1(d.Invisible, 1200, 4200) {
			t.Fatalf("sample %d: mixed %+v: want 3,000 visible and 1,200 invisible", i, d)
		}
	}
}

// Queues made by other clients may carry names this package would refuse:
// PGMQ accepts nearly anything. The depth sampler reads such names from
// pgmq.meta and must quote them, sampling every queue right.
func TestHostileNamesInPGMQAreSampled(t *testing.T) {
	ctx, c, db := setup(t, "plain")
	hostile := []string{`a"b`, "with space", "x.y", `"quoted"`, "Ünïcödé", "İstanbul", "tab\there", "select", "a/*b*/", `\`}
	for i, name := range hostile {
		if _, err := db.Pool.Exec(ctx, "SELECT pgmq.create($1)", name); err != nil {
			t.Fatalf("pgmq.create(%q): %v", name, err)
		}
		// Messages sent through PGMQ's own function, as another client would.
		for range i + 1 {
			if _, err := db.Pool.Exec(ctx, "SELECT pgmq.send($1, '{}'::jsonb)", name); err != nil {
				t.Fatalf("pgmq.send(%q): %v", name, err)
			}
		}
	}
	sendN(t, ctx, c, "plain", 3)

	s, err := newSampler(db.Pool, queuedepth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the first builds the statement, the second reuses it
		depths, err := s.Sample(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got := map[string]int64{}
		for _, d := range depths {
			got[d.Name] = d.Depth
		}
		want := map[string]int64{"plain": 3}
		for i, name := range hostile {
			want[name] = int64(i + 1)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: depths %v, want %v", round, got, want)
		}
	}
	// The tables are intact: nothing was run as a side effect of a name.
	var tables int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'pgmq' AND tablename LIKE 'q\\_%'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != len(hostile)+1 {
		t.Fatalf("%d queue tables, want %d", tables, len(hostile)+1)
	}
}
