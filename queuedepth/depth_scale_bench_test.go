package queuedepth_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// benchQueueCounts are the queue counts BenchmarkDepthManyQueues grows
// through: BENCH_QUEUES (comma separated), else 1,000, 3,000 and 10,000.
func benchQueueCounts(b *testing.B) []int {
	spec := os.Getenv("BENCH_QUEUES")
	if spec == "" {
		spec = "1000,3000,10000"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			b.Fatalf("BENCH_QUEUES=%q: %q is not a queue count of at least 10", spec, f)
		}
		out = append(out, n)
	}
	return out
}

// createQueues creates queues bq_<from> to bq_<to-1>, 200 per transaction
// (each creation locks its new tables until commit).
func createQueues(b *testing.B, db *pgmqtest.DB, from, to int) {
	ctx := context.Background()
	for lo := from; lo < to; lo += 200 {
		hi := min(lo+200, to)
		if _, err := db.Pool.Exec(ctx, `SELECT pgmq.create('bq_' || g) FROM generate_series($1::int, $2::int - 1) AS g`, lo, hi); err != nil {
			b.Fatalf("create queues %d..%d: %v", lo, hi, err)
		}
	}
}

// BenchmarkDepthManyQueues samples 1,000, 3,000 and 10,000 queues on a
// PostgreSQL 15 cluster of its own with default settings
// (max_connections 100, max_locks_per_transaction 64): mostly empty, one in
// ten holding 5 messages, and 3 holding 120,000 (above the default
// threshold, statistics current). It reports per queue the cost of a
// sample, of a sample right after an ANALYZE of one queue table, and of
// pgmq.metrics_all() (at 1,000 and 3,000 queues; it fails at 5,000 on
// this configuration), and whether every queue was reported without error
// within the default 2 s sample timeout, exact at or below the threshold
// (complete = 1). At 1,000 queues it also measures the sampler backend's
// memory (pg_backend_memory_contexts) before and after 100 queue creations
// and drops, each followed by a sample. The same samples are also taken
// through PgBouncer in transaction mode (queues=N/pooler), as hosted PGMQ
// is often reached.
func BenchmarkDepthManyQueues(b *testing.B) {
	counts := benchQueueCounts(b)
	cluster := pgcluster.Start(b, pgcluster.Options{})
	db := pgmqtest.NewAt(b, cluster.URL(""))
	ctx := context.Background()
	conn, direct := depthSampler(b, db.URL, queuedepth.Options{})
	u, err := url.Parse(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	bouncer := pgbouncer.Start(b, pgbouncer.Options{Target: u.Host, Mode: pgbouncer.Transaction})
	_, pooled := depthSampler(b, bouncer.URL("", "", db.Name)+"&default_query_exec_mode=exec", queuedepth.Options{})
	s := direct
	want := map[string]int64{}
	// sample takes one sample within the default sample timeout and says
	// how long it took and whether every queue was reported, exact at or
	// below the threshold. A sample past the timeout counts as incomplete.
	sample := func(b *testing.B, n int) (time.Duration, bool) {
		b.Helper()
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		ds, err := s.Sample(sctx)
		took := time.Since(start)
		if err != nil {
			b.Logf("sample of %d queues: %v (after %v)", n, err, took)
			if conn.IsClosed() {
				b.Fatal("the sampler's connection was closed")
			}
			return took, false
		}
		if len(ds) != n {
			b.Logf("sampled %d queues, want %d", len(ds), n)
			return took, false
		}
		for _, d := range ds {
			if d.Err != nil {
				b.Logf("%s: %v", d.Name, d.Err)
				return took, false
			}
			if w, ok := want[d.Name]; ok && (d.Depth != w || d.Method != queuedepth.MethodCount) {
				b.Fatalf("%s: depth %d %s, want %d counted", d.Name, d.Depth, d.Method, w)
			}
		}
		return took, true
	}

	have := 0
	for _, n := range counts {
		createQueues(b, db, have, n)
		for i := have; i < n; i++ {
			q := fmt.Sprintf("bq_%d", i)
			switch {
			case i < 3:
				fillQueue(b, db, q, 120_000)
			case i%10 == 0:
				fillQueue(b, db, q, 5)
				want[q] = 5
			default:
				want[q] = 0
			}
		}
		if have == 0 {
			waitForStatistics(b, db, "bq_0", "bq_1", "bq_2")
			analyze(b, db, "bq_0", "bq_1", "bq_2")
		}
		have = n

		// The first sample after the queues were created finds the
		// session's caches cold (a burst of DDL resets them): measured
		// apart, without the timeout.
		b.Run(fmt.Sprintf("queues=%d/cold", n), func(b *testing.B) {
			first := true
			queuedepth.SetPhases(func(d, c, p time.Duration) {
				if first {
					b.ReportMetric(float64(d.Milliseconds()), "discover_ms")
					b.ReportMetric(float64(c.Milliseconds()), "catalog_ms")
					b.ReportMetric(float64(p.Milliseconds()), "probe_ms")
				}
				first = false
			})
			defer queuedepth.SetPhases(nil)
			for b.Loop() {
				start := time.Now()
				if _, err := s.Sample(ctx); err != nil {
					b.Fatal(err)
				}
				if !first {
					b.ReportMetric(float64(time.Since(start).Milliseconds()), "last_ms")
				}
			}
		})
		b.Run(fmt.Sprintf("queues=%d/sample", n), func(b *testing.B) {
			var worst, disc, cat, probe time.Duration
			queuedepth.SetPhases(func(d, c, p time.Duration) { disc, cat, probe = disc+d, cat+c, probe+p })
			defer queuedepth.SetPhases(nil)
			complete := true
			for b.Loop() {
				took, ok := sample(b, n)
				worst, complete = max(worst, took), complete && ok
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/queue")
			b.ReportMetric(float64(worst.Milliseconds()), "worst_ms")
			b.ReportMetric(boolMetric(complete && worst < 2*time.Second), "complete")
			b.ReportMetric(float64(disc.Milliseconds())/float64(b.N), "discover_ms")
			b.ReportMetric(float64(cat.Milliseconds())/float64(b.N), "catalog_ms")
			b.ReportMetric(float64(probe.Milliseconds())/float64(b.N), "probe_ms")
		})
		b.Run(fmt.Sprintf("queues=%d/pooler", n), func(b *testing.B) {
			s = pooled
			defer func() { s = direct }()
			var worst time.Duration
			complete := true
			for b.Loop() {
				took, ok := sample(b, n)
				worst, complete = max(worst, took), complete && ok
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/queue")
			b.ReportMetric(float64(worst.Milliseconds()), "worst_ms")
			b.ReportMetric(boolMetric(complete && worst < 2*time.Second), "complete")
		})
		b.Run(fmt.Sprintf("queues=%d/after_analyze", n), func(b *testing.B) {
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				if _, err := db.Pool.Exec(ctx, fmt.Sprintf("ANALYZE pgmq.bq_%d", (i*7)%n)); err != nil &&
					!strings.Contains(err.Error(), "does not exist") {
					b.Fatal(err)
				}
				if _, err := db.Pool.Exec(ctx, fmt.Sprintf("ANALYZE pgmq.q_bq_%d", (i*7)%n)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				took, _ := sample(b, n)
				total += took
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N)/float64(n), "ns/queue")
		})
		if n <= 3000 {
			b.Run(fmt.Sprintf("queues=%d/metrics_all", n), func(b *testing.B) {
				c := pgmqclient.New(db.Pool)
				for b.Loop() {
					ms, err := c.MetricsAll(ctx)
					if err != nil || len(ms) != n {
						b.Fatalf("metrics_all: %d rows, %v", len(ms), err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/queue")
			})
		}
		if n == 1000 {
			b.Run("queues=1000/memory_churn", func(b *testing.B) {
				c := pgmqclient.New(db.Pool)
				memory := func() float64 {
					var bytes int64
					if err := conn.QueryRow(ctx, `SELECT sum(total_bytes) FROM pg_backend_memory_contexts`,
						pgx.QueryExecModeSimpleProtocol).Scan(&bytes); err != nil {
						b.Fatal(err)
					}
					return float64(bytes)
				}
				var start, end float64
				for b.Loop() {
					_, _ = sample(b, n)
					start = memory()
					for i := range 100 {
						q := fmt.Sprintf("churn_%d", i)
						if err := c.CreateQueue(ctx, q); err != nil {
							b.Fatal(err)
						}
						want[q] = 0
						_, _ = sample(b, n+1)
						if _, err := c.DropQueue(ctx, q); err != nil {
							b.Fatal(err)
						}
						delete(want, q)
						_, _ = sample(b, n)
					}
					end = memory()
				}
				b.ReportMetric(start, "start_bytes")
				b.ReportMetric(end, "end_bytes")
				b.ReportMetric(100*(end-start)/start, "growth_%")
			})
		}
	}
}

func boolMetric(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}
