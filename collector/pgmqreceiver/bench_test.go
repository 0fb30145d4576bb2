package pgmqreceiver

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// BenchmarkReceiverVsInProcess: two databases, each in a PostgreSQL 15
// cluster of its own with default settings, holding 5,000 queues of 0 to 5
// messages. Each iteration takes one receiver scrape (both databases,
// concurrently, into pdata) and one in-process collection by otelmetrics
// of the same databases (ManualReader.Collect), interleaved so both see
// the same load; the election is off on both sides, which would otherwise
// elect one of them. receiver_ns/queue and inprocess_ns/queue are the
// medians per queue (run it with -benchtime of at least 3x), ratio is
// their quotient, and complete is 1 when every scrape and every collection
// reported all 10,000 queues.
func BenchmarkReceiverVsInProcess(b *testing.B) {
	const perDB = 5000
	ctx := context.Background()
	var dsns []string
	for range 2 {
		cluster := pgcluster.Start(b, pgcluster.Options{})
		db := pgmqtest.NewAt(b, cluster.URL(""))
		db.CreateQueues(b, "rq_", perDB, func(i int) int { return i % 6 })
		dsns = append(dsns, db.URL)
	}
	const queues = 2 * perDB

	// A generous sample timeout on both sides: this measures what a sample
	// costs, not whether it fits the default 2 s on a loaded machine (the
	// e2e benchmark of the Collector runs with the defaults).
	const timeout = 30 * time.Second
	cfg := testConfig(dsns...)
	cfg.Election.Enabled = false
	cfg.SampleTimeout = timeout
	s := newScraper(cfg, receivertest.NewNopSettings(metadata.Type))
	if err := s.start(ctx, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.shutdown(ctx) })

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(otelsetup.DefaultCardinalityLimit))
	b.Cleanup(func() { _ = mp.Shutdown(ctx) })
	opts := []otelmetrics.Option{otelmetrics.WithMeterProvider(mp), otelmetrics.WithDeclaredCardinalityLimit(otelsetup.DefaultCardinalityLimit)}
	for _, dsn := range dsns {
		pc, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			b.Fatal(err)
		}
		opts = append(opts, otelmetrics.WithQueueSampler(queuesampler.Config{Conn: pc, NoElection: true, MinInterval: -1, SampleTimeout: timeout}))
	}
	m, err := otelmetrics.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })

	// Each side is timed alone; the check that it reported every queue
	// (two depth points each) runs after.
	var md pmetric.Metrics
	scrape := func() time.Duration {
		start := time.Now()
		var err error
		if md, err = s.scrape(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var rm metricdata.ResourceMetrics
	collect := func() time.Duration {
		start := time.Now()
		if err := reader.Collect(ctx, &rm); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	complete := func() bool {
		return md.DataPointCount() > 0 && len(collectionOf(md)["pgmq.queue.depth"].points) == 2*queues &&
			len(collectionOfSDK(rm)["pgmq.queue.depth"].points) == 2*queues
	}
	// Discarded: each side's first sample connects and warms its session.
	scrape()
	collect()
	var rcv, inproc []time.Duration
	all := true
	for b.Loop() {
		rcv = append(rcv, scrape())
		inproc = append(inproc, collect())
		b.StopTimer()
		all = all && complete()
		b.StartTimer()
	}
	r, p := median(rcv), median(inproc)
	b.ReportMetric(float64(r.Nanoseconds())/queues, "receiver_ns/queue")
	b.ReportMetric(float64(p.Nanoseconds())/queues, "inprocess_ns/queue")
	b.ReportMetric(float64(r)/float64(p), "ratio")
	b.ReportMetric(map[bool]float64{true: 1, false: 0}[all], "complete")
}

// median of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[(len(ds)-1)/2]
}

// BenchmarkRecordQueues is the receiver's own work per scrape apart from
// the database: turning a sample of 10,000 queues into pdata (four points
// per queue, the attributes of otelmetrics). ns/queue is per queue.
func BenchmarkRecordQueues(b *testing.B) {
	const n = 10_000
	pc, err := pgxpool.ParseConfig("postgres://monitor@db.example:5432/app")
	if err != nil {
		b.Fatal(err)
	}
	s, err := queuesampler.New(queuesampler.Config{Conn: pc, NoElection: true})
	if err != nil {
		b.Fatal(err)
	}
	db := &database{s: s, address: "db.example", port: 5432, namespace: "app"}
	sample := &queuesampler.Sample{At: time.Now(), Role: queuesampler.RoleSampler}
	for i := range n {
		sample.Queues = append(sample.Queues, queuedepth.Queue{Name: fmt.Sprintf("queue_%d", i), Depth: 5, Visible: 3, Invisible: 2,
			VisibleMethod: queuedepth.MethodCount, InvisibleMethod: queuedepth.MethodCount, Method: queuedepth.MethodCount,
			OldestAge: time.Second, TotalSent: 10, TotalSentKnown: true})
	}
	mb := metadata.NewMetricsBuilder(metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	ts := pcommon.NewTimestampFromTime(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		db.record(mb, ts, sample)
		if md := mb.Emit(); md.DataPointCount() != 4*n {
			b.Fatalf("%d points", md.DataPointCount())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/queue")
}
