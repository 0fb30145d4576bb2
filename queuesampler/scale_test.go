package queuesampler_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// 10,000 queues (one in ten holding a message) on a PostgreSQL of default
// settings (max_connections 100, max_locks_per_transaction 64), sampled
// through PgBouncer in transaction mode: every queue is reported, and a
// queue whose table another session keeps locked loses only its own
// figures. Before, the sample behind a
// pooler was one transaction taking a lock per queue table, which ran out
// of shared memory ("out of shared memory", no queue reported), and a
// locked table ended the whole sample.
func TestTenThousandQueuesThroughTransactionPooler(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 queues")
	}
	const n = 10_000
	cluster := pgcluster.Start(t, pgcluster.Options{})
	db := pgmqtest.NewAt(t, cluster.URL(""))
	ctx := context.Background()
	start := time.Now()
	for lo := 0; lo < n; lo += 200 {
		if _, err := db.Pool.Exec(ctx, `SELECT pgmq.create('bq_' || g) FROM generate_series($1::int, $2::int - 1) AS g`, lo, lo+200); err != nil {
			t.Fatalf("create queues %d..: %v", lo, err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `SELECT pgmq.send('bq_' || g, '{}'::jsonb) FROM generate_series(0, $1::int - 1, 10) AS g`, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d queues created in %v", n, time.Since(start).Round(time.Millisecond))
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := pgbouncer.Start(t, pgbouncer.Options{Target: u.Host, Mode: pgbouncer.Transaction})

	// Another session holds a lock on one queue table throughout.
	locker, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE pgmq.q_bq_5000 IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	// The sample's time is a benchmark's figure (scripts/bench.sh, the
	// 10,000-queue lines, against the default 2 s timeout); here a longer
	// timeout keeps a busy machine from failing what this test checks.
	s := newSampler(t, b.URL("", "", db.Name)+"&default_query_exec_mode=exec", queuesampler.Config{SampleTimeout: 30 * time.Second})
	for i := range 3 {
		began := time.Now()
		sample := get(t, s)
		took := time.Since(began)
		ok, failed := 0, 0
		for _, q := range sample.Queues {
			switch {
			case q.Err == nil:
				ok++
			case q.Name == "bq_5000" && queuesampler.QueueErrorType(q.Err) == "timeout":
				failed++
			default:
				t.Fatalf("sample %d: queue %s: %v", i, q.Name, q.Err)
			}
		}
		t.Logf("sample %d: %d queues reported, %d failed, in %v", i, ok, failed, took.Round(time.Millisecond))
		if ok != n-1 || failed != 1 {
			t.Fatalf("sample %d: %d queues reported and %d failed, want %d and the locked one", i, ok, failed, n-1)
		}
	}
}
