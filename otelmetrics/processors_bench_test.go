package otelmetrics

import (
	"context"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The baseline of the processor-tracking bar: a bare atomic add pair.
func BenchmarkAtomicAddPair(b *testing.B) {
	var n atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		n.Add(1)
		n.Add(-1)
	}
}

func BenchmarkAtomicAddPairParallel(b *testing.B) {
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Add(1)
			n.Add(-1)
		}
	})
}

func BenchmarkProcessorStartFinish(b *testing.B) {
	m, _ := newTestMetrics(b)
	k := m.Processor("bench")
	b.ReportAllocs()
	for b.Loop() {
		run := k.Start()
		run.Finish()
	}
}

func BenchmarkProcessorStartFinishParallel(b *testing.B) {
	m, _ := newTestMetrics(b)
	k := m.Processor("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			run := k.Start()
			run.Finish()
		}
	})
}

// BenchmarkProcessorStartedFunc measures the convenience form, which looks
// the kind up and allocates its idempotent closure.
func BenchmarkProcessorStartedFunc(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		done := m.ProcessorStarted("bench")
		done()
	}
}

// BenchmarkSDKSyncUpDownCounter is the alternative we did not choose: the
// SDK's synchronous UpDownCounter with a precomputed attribute set.
func BenchmarkSDKSyncUpDownCounter(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	c, err := mp.Meter("bench").Int64UpDownCounter("active")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrProcessorKind, "bench")))
	b.ReportAllocs()
	for b.Loop() {
		c.Add(ctx, 1, attrs)
		c.Add(ctx, -1, attrs)
	}
}

func BenchmarkSDKSyncUpDownCounterParallel(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	c, err := mp.Meter("bench").Int64UpDownCounter("active")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrProcessorKind, "bench")))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(ctx, 1, attrs)
			c.Add(ctx, -1, attrs)
		}
	})
}
