package queuedepth_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// partitionedQueue makes a partitioned queue "parts", partitioned by
// msg_id in ranges of 10,000: with PGMQ's own SQL through
// pgmq.create_partitioned and pg_partman, with the compat schema as a
// table of the same shape (no primary key, an index on msg_id, no vt
// index).
func partitionedQueue(t *testing.T, db *pgmqtest.DB) {
	t.Helper()
	ctx := context.Background()
	var stmts []string
	if db.Install == pgmqtest.InstallCompat {
		stmts = []string{`CREATE TABLE pgmq.q_parts (
			msg_id bigint GENERATED ALWAYS AS IDENTITY, read_ct int NOT NULL DEFAULT 0,
			enqueued_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb, headers jsonb
		) PARTITION BY RANGE (msg_id)`}
		for i := range 10 {
			stmts = append(stmts, fmt.Sprintf(`CREATE TABLE pgmq.q_parts_p%d PARTITION OF pgmq.q_parts FOR VALUES FROM (%d) TO (%d)`, i, i*10_000, (i+1)*10_000))
		}
		stmts = append(stmts,
			`CREATE TABLE pgmq.q_parts_default PARTITION OF pgmq.q_parts DEFAULT`,
			`CREATE INDEX q_parts_part_idx ON pgmq.q_parts (msg_id)`,
			`INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged) VALUES ('parts', true, false)`)
	} else {
		stmts = []string{
			`CREATE SCHEMA partman`,
			`CREATE EXTENSION pg_partman SCHEMA partman`,
			`SELECT pgmq.create_partitioned('parts', '10000', '1000000')`,
		}
	}
	for _, s := range stmts {
		if _, err := db.Pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Finding 6: a partitioned queue above the threshold gets a real estimate
// (summed over its partitions), not threshold+1, with current statistics
// and after pg_stat_reset().
func TestSampleDepthsPartitionedQueue(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	partitionedQueue(t, db)
	const n = 80_000
	fillQueue(t, db, "parts", n)
	// Let the inserts' statistics arrive before ANALYZE re-bases them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var live int64
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'pgmq' AND relname LIKE 'q_parts%'`).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statistics of q_parts: %d live rows, want %d", live, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	analyze(t, db, "parts")
	c := pgmqclient.New(db.Pool)
	for _, stage := range []string{"current statistics", "after pg_stat_reset()"} {
		if stage == "after pg_stat_reset()" {
			if _, err := db.Pool.Exec(ctx, `SELECT pg_stat_reset()`); err != nil {
				t.Fatal(err)
			}
		}
		ds, err := sampleDepths(ctx, c, queuedepth.Options{Queues: []string{"parts"}, ExactCountThreshold: 1000})
		if err != nil {
			t.Fatal(err)
		}
		d := depthOf(t, ds, "parts")
		t.Logf("%s: %+v", stage, d)
		if d.Err != nil || !d.Estimated() || !within1(d.Depth, n, n) || !within1(d.Visible, n, n) || !within1(d.Invisible, 0, n) {
			t.Errorf("%s: %+v, want %d visible within 1%%, estimated", stage, d, n)
		}
		if !d.TotalSentKnown || d.TotalSent != n {
			t.Errorf("%s: sent %d (known %v), want %d", stage, d.TotalSent, d.TotalSentKnown, n)
		}
	}
}
