package otelmetrics

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

func benchCollect(b *testing.B, r sdkmetric.Reader, rm *metricdata.ResourceMetrics) {
	if err := r.Collect(context.Background(), rm); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReplicasRound: three replicas share a database; one iteration is
// one collection by each. queue_queries/round counts the queue-depth
// statements all three sent together: the election keeps it at one, where
// without it (the baseline) every replica queries.
func BenchmarkReplicasRound(b *testing.B) {
	for _, election := range []bool{true, false} {
		name := map[bool]string{true: "election", false: "no_election"}[election]
		b.Run(name, func(b *testing.B) { benchReplicasRound(b, election) })
	}
}

func benchReplicasRound(b *testing.B, election bool) {
	db := pgmqtest.New(b)
	if err := pgmqclient.New(db.Pool).CreateQueue(context.Background(), "shared"); err != nil {
		b.Fatal(err)
	}
	replicas := make([]replica, 3)
	for i := range replicas {
		m, r := newTestMetrics(b, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, NoElection: !election}))
		replicas[i] = replica{m, r}
	}
	var rm metricdata.ResourceMetrics
	for _, rp := range replicas { // elect before measuring
		benchCollect(b, rp.r, &rm)
	}
	queries := func() (n int64) {
		for _, rp := range replicas {
			n += sampler(rp.m).Stats().Queries
		}
		return n
	}
	before := queries()
	b.ReportAllocs()
	for b.Loop() {
		for _, rp := range replicas {
			benchCollect(b, rp.r, &rm)
		}
	}
	b.ReportMetric(float64(queries()-before)/float64(b.N), "queue_queries/round")
}

// BenchmarkThrottledReaders: two readers (say OTLP and Prometheus) and a
// health check collect at every iteration while the clock advances a
// quarter of the minimum interval. db_samples/interval must stay at most 1.
func BenchmarkThrottledReaders(b *testing.B) {
	db := pgmqtest.New(b)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "throttled"); err != nil {
		b.Fatal(err)
	}
	const interval = time.Second
	var ticks atomic.Int64
	start := time.Now()
	clock := func() time.Time { return start.Add(time.Duration(ticks.Load()) * interval / 4) }
	r1, r2 := sdkmetric.NewManualReader(), sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r1), sdkmetric.WithReader(r2))
	defer func() { _ = mp.Shutdown(ctx) }()
	m, err := New(WithMeterProvider(mp), WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: interval, Now: clock}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var rm metricdata.ResourceMetrics
	b.ReportAllocs()
	for b.Loop() {
		benchCollect(b, r1, &rm)
		benchCollect(b, r2, &rm)
		m.Snapshot(ctx)
		ticks.Add(1)
	}
	// The loop's ticks 0..n-1 fall in (n-1)/4+1 minimum intervals, the
	// first one included: counting n/4 would charge the first interval's
	// sample to a fraction of an interval when n is not a multiple of 4.
	intervals := float64((max(ticks.Load(), 1)-1)/4 + 1)
	b.ReportMetric(float64(sampler(m).Stats().Attempts)/intervals, "db_samples/interval")
}

// BenchmarkFullCollection: one collection with 3 pools, 100 queues and 10
// processor kinds. "sampled" reaches the database at every collection;
// "throttled" reuses the last sample, as collections within the minimum
// interval do.
func BenchmarkFullCollection(b *testing.B) {
	db := pgmqtest.New(b)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for i := range 100 {
		q := fmt.Sprintf("queue_%03d", i)
		if err := c.CreateQueue(ctx, q); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{"pgmq", "q_" + q}.Sanitize()+
			` (vt, message) SELECT now(), '{}' FROM generate_series(1, 100)`); err != nil {
			b.Fatal(err)
		}
	}
	var opts []Option
	for i := range 3 {
		opts = append(opts, WithPool(fmt.Sprintf("pool_%d", i), newPool(b, db.URL, 10)))
	}
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"sampled", 0}, {"throttled", time.Hour}} {
		b.Run(tc.name, func(b *testing.B) {
			minInterval := tc.interval
			if minInterval == 0 {
				minInterval = -1 // every collection samples
			}
			m, r := newTestMetrics(b, append(opts, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: minInterval, NoElection: true}))...)
			var runs []ProcessorRun
			for i := range 10 {
				runs = append(runs, m.Processor(fmt.Sprintf("kind_%d", i)).Start())
			}
			defer func() {
				for i := range runs {
					runs[i].Finish()
				}
			}()
			var rm metricdata.ResourceMetrics
			benchCollect(b, r, &rm)
			if got := len(collect(b, r).points(MetricQueueOldestAge)); got != 100 {
				b.Fatalf("collected %d queues, want 100", got)
			}
			b.ReportAllocs()
			for b.Loop() {
				benchCollect(b, r, &rm)
			}
		})
	}
}
