package otelmetrics

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// scaleLimit fits 10,000 queues, as otelsetup.DefaultCardinalityLimit
// (which this package's tests cannot import: otelsetup imports it).
const scaleLimit = 20_001

// newScaleMetrics is newTestMetrics on a MeterProvider whose cardinality
// limit fits 10,000 queues, as otelsetup.NewMeterProvider's does.
func newScaleMetrics(b *testing.B, opts ...Option) (*Metrics, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(scaleLimit))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := New(append([]Option{WithMeterProvider(mp), WithDeclaredCardinalityLimit(scaleLimit)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m, reader
}

// median of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// queuesReported counts the queues whose depth a collection holds.
func queuesReported(rm *metricdata.ResourceMetrics) int {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == MetricQueueDepth {
				return len(g.DataPoints) / depthPointsPerQueue
			}
		}
	}
	return 0
}

// BenchmarkCollectManyQueues is the queue depth as an operator pays for
// it: the whole collection (ManualReader.Collect running the callback,
// the election's renewal included) of 3,000 queues holding 0 to 5
// messages each, on a PostgreSQL 15 cluster of default settings, against
// pgmq.metrics_all() warmed (the first call of each discarded). Each
// iteration times one of each, interleaved so both see the same load;
// collect_ms and metrics_all_ms are the medians (run it with -benchtime
// of at least 3x), ratio is metrics_all_ms / collect_ms, and complete is
// 1 when every collection reported all 3,000 queues. floor_ms is the
// least an exact count costs where the tables are not known empty: one
// count(*) per queue table, pipelined on one connection (same iterations).
func BenchmarkCollectManyQueues(b *testing.B) {
	const n = 3000
	cluster := pgcluster.Start(b, pgcluster.Options{})
	db := pgmqtest.NewAt(b, cluster.URL(""))
	queues := db.CreateQueues(b, "cq_", n, func(i int) int { return i % 6 })
	ctx := context.Background()
	_, r := newScaleMetrics(b, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	c := pgmqclient.New(db.Pool)
	fc, err := pgx.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	fc.DefaultQueryExecMode = pgx.QueryExecModeExec // unnamed statements, as the sampler sends them
	floorConn, err := pgx.ConnectConfig(ctx, fc)
	if err != nil {
		b.Fatal(err)
	}
	defer floorConn.Close(ctx)
	var rm metricdata.ResourceMetrics
	// Discarded: the sampler's first collection connects and elects; the
	// first metrics_all() reads the tables into the cache.
	benchCollect(b, r, &rm)
	if _, err := c.MetricsAll(ctx); err != nil {
		b.Fatal(err)
	}
	floorBatch := &pgx.Batch{}
	for _, q := range queues {
		floorBatch.Queue(`SELECT count(*) FROM ` + pgx.Identifier{"pgmq", "q_" + q}.Sanitize())
	}
	if err := floorConn.SendBatch(ctx, floorBatch).Close(); err != nil {
		b.Fatal(err)
	}
	var collects, metricsAll, floors []time.Duration
	complete := true
	for b.Loop() {
		start := time.Now()
		benchCollect(b, r, &rm)
		collects = append(collects, time.Since(start))
		complete = complete && queuesReported(&rm) == n
		start = time.Now()
		ms, err := c.MetricsAll(ctx)
		metricsAll = append(metricsAll, time.Since(start))
		if err != nil || len(ms) != n {
			b.Fatalf("metrics_all: %d rows, %v", len(ms), err)
		}
		start = time.Now()
		if err := floorConn.SendBatch(ctx, floorBatch).Close(); err != nil {
			b.Fatal(err)
		}
		floors = append(floors, time.Since(start))
	}
	cm, mm := median(collects), median(metricsAll)
	b.ReportMetric(ms(median(floors)), "floor_ms")
	b.ReportMetric(ms(cm), "collect_ms")
	b.ReportMetric(ms(mm), "metrics_all_ms")
	b.ReportMetric(float64(mm)/float64(cm), "ratio")
	b.ReportMetric(boolMetric(complete), "complete")
}

// BenchmarkFirstCollectionAfterRestart: 10,000 queues (one in ten holding
// a message) on a PostgreSQL 15 cluster of default settings; each
// iteration restarts PostgreSQL (a clean shutdown: shared buffers and
// every backend's caches start empty; the operating system's page cache
// is left as it is) and times the application's next collection, on the
// same Metrics, whose sampler finds its connection gone and reconnects,
// under the default 2 s sample timeout. first_ms is the median and
// worst_ms the slowest; complete is 1 when every such collection reported
// all 10,000 queues. floor_ms is, after a restart of its own, what any
// sampler pays at least: a new connection opening every queue table once
// (pg_relation_size of each) and reading its statistics row.
func BenchmarkFirstCollectionAfterRestart(b *testing.B) {
	const n = 10_000
	cluster := pgcluster.Start(b, pgcluster.Options{})
	db := pgmqtest.NewAt(b, cluster.URL(""))
	db.CreateQueues(b, "rq_", n, func(i int) int { return boolInt(i%10 == 0) })
	_, r := newScaleMetrics(b, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	var rm metricdata.ResourceMetrics
	benchCollect(b, r, &rm)
	if got := queuesReported(&rm); got != n {
		b.Fatalf("warm collection reported %d queues, want %d", got, n)
	}
	var firsts, floors []time.Duration
	complete := true
	for b.Loop() {
		b.StopTimer()
		cluster.Restart(b, "fast")
		b.StartTimer()
		start := time.Now()
		benchCollect(b, r, &rm)
		firsts = append(firsts, time.Since(start))
		if got := queuesReported(&rm); got != n {
			b.Logf("first collection after restart: %d of %d queues in %v", got, n, firsts[len(firsts)-1])
			complete = false
		}
		b.StopTimer()
		cluster.Restart(b, "fast")
		floors = append(floors, coldFloor(b, db.URL))
		b.StartTimer()
	}
	worst := slices.Max(firsts)
	b.ReportMetric(ms(median(firsts)), "first_ms")
	b.ReportMetric(ms(worst), "worst_ms")
	b.ReportMetric(boolMetric(complete && worst < queuesampler.DefaultSampleTimeout), "complete")
	b.ReportMetric(ms(median(floors)), "floor_ms")
}

// coldFloor times a new connection opening every queue table once and
// reading its statistics row: the least a sample after a restart costs.
func coldFloor(b *testing.B, url string) time.Duration {
	ctx := context.Background()
	start := time.Now()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var pages, live int64
	if err := conn.QueryRow(ctx, `SELECT sum(pg_relation_size(c.oid)), sum(pg_stat_get_live_tuples(c.oid))
		FROM pg_class c WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'q\_%'`).Scan(&pages, &live); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func boolInt(ok bool) int {
	if ok {
		return 1
	}
	return 0
}

func boolMetric(ok bool) float64 { return float64(boolInt(ok)) }
