package otelmetrics

import (
	"context"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/queuesampler"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// newTestMetrics returns Metrics registered on a fresh MeterProvider with a
// ManualReader, closed at the end of the test.
func newTestMetrics(t testing.TB, opts ...Option) (*Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := New(append([]Option{WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, reader
}

// collected is one collection, indexed by instrument name.
type collected map[string]metricdata.Metrics

func collect(t testing.TB, r sdkmetric.Reader) collected {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName || sm.Scope.Version != Version {
			t.Fatalf("unexpected scope %q %q", sm.Scope.Name, sm.Scope.Version)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// point is a data point's value with its attributes.
type point struct {
	attrs attribute.Set
	value float64
}

func (c collected) points(name string) []point {
	var out []point
	switch d := c[name].Data.(type) {
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, point{p.Attributes, float64(p.Value)})
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out = append(out, point{p.Attributes, p.Value})
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, point{p.Attributes, float64(p.Value)})
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			out = append(out, point{p.Attributes, p.Value})
		}
	}
	return out
}

// value returns the value of the point of name whose attributes include
// all of kv, and whether there is one.
func (c collected) value(name string, kv ...attribute.KeyValue) (float64, bool) {
	for _, p := range c.points(name) {
		match := true
		for _, want := range kv {
			if got, ok := p.attrs.Value(want.Key); !ok || got != want.Value {
				match = false
				break
			}
		}
		if match {
			return p.value, true
		}
	}
	return 0, false
}

func (c collected) mustValue(t testing.TB, name string, kv ...attribute.KeyValue) float64 {
	t.Helper()
	v, ok := c.value(name, kv...)
	if !ok {
		t.Fatalf("no %s point with %v; have %v", name, kv, c.points(name))
	}
	return v
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sampler is m's queue sampler of its first (in these tests only)
// database.
func sampler(m *Metrics) *queuesampler.Sampler { return m.dbs[0].s }

// val is a snapshot figure, -1 where it is null.
func val(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
