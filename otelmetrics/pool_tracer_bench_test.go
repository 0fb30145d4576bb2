package otelmetrics

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// noopAcquireTracer is an acquire hook that does nothing: what pgx itself
// costs to call one.
type noopAcquireTracer struct{}

func (noopAcquireTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (noopAcquireTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (noopAcquireTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}
func (noopAcquireTracer) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {
}

// acquireBlock is how many acquire-and-releases one timed block runs.
const acquireBlock = 512

// BenchmarkPoolAcquire measures what the PoolTracer adds to an
// acquire-and-release of an idle connection, against the same on a pool
// without a tracer, in the same run: blocks of acquireBlock calls
// alternate between three pools of one database (no tracer; a no-op
// acquire tracer, pgx's own cost of calling a hook; the PoolTracer
// recording into an SDK histogram), so all three see the same load. One
// iteration is one block of each. It reports each per call (plain_ns/op,
// noop_hook_ns/op, hooked_ns/op) and the ratios to plain.
func BenchmarkPoolAcquire(b *testing.B) {
	db := pgmqtest.New(b)
	ctx := context.Background()
	pools := []*pgxpool.Pool{
		newTracedPool(b, db.URL, 2, nil),
		newTracedPool(b, db.URL, 2, noopAcquireTracer{}),
		newTracedPool(b, db.URL, 2, NewPoolTracer()),
	}
	newTestMetrics(b, WithPool("bench", pools[2]))
	block := func(p *pgxpool.Pool) time.Duration {
		start := time.Now()
		for range acquireBlock {
			c, err := p.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
		return time.Since(start)
	}
	for _, p := range pools { // open the connections
		block(p)
	}
	var total [3]time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i, p := range pools {
			total[i] += block(p)
		}
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n*acquireBlock) }
	b.ReportMetric(per(total[0]), "plain_ns/op")
	b.ReportMetric(per(total[1]), "noop_hook_ns/op")
	b.ReportMetric(per(total[2]), "hooked_ns/op")
	b.ReportMetric(per(total[1])/per(total[0]), "noop_hook/plain")
	b.ReportMetric(per(total[2])/per(total[0]), "hooked/plain")
}

// BenchmarkSDKHistogramRecord is the SDK's own cost of what the PoolTracer
// records per acquire: one Record on a histogram with a kept attribute
// set, the floor under any per-acquire histogram.
func BenchmarkSDKHistogramRecord(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	h, err := mp.Meter("bench").Float64Histogram(MetricConnectionWait, metric.WithExplicitBucketBoundaries(ConnectionWaitBuckets...))
	if err != nil {
		b.Fatal(err)
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrPoolName, "bench")))}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.Record(ctx, 0.000001, opts...)
	}
}
