package otelpgmq

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// A wait that comes out negative (Pop reads the time from this process,
// here an hour behind the server) is left out of the histogram and counted
// as skipped, never recorded as 0 or a negative value.
func TestNegativeWaitSkippedAndCounted(t *testing.T) {
	t.Parallel()
	db := pgmqtest.New(t)
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tr := NewTracer(WithMeterProvider(mp))
	tr.now = func() time.Time { return time.Now().Add(-time.Hour) }
	c := pgmqclient.New(db.Pool, pgmqclient.WithTracer(tr))
	if err := c.CreateQueue(ctx, "skew"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "skew", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if msgs, err := c.Pop(ctx, "skew", 1); err != nil || len(msgs) != 1 {
		t.Fatalf("pop: %d, %v", len(msgs), err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var skipped int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case MetricWaitDuration:
				for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					if p.Count != 0 {
						t.Errorf("wait.duration recorded %d points", p.Count)
					}
				}
			case MetricWaitSkipped:
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					if v, _ := p.Attributes.Value(AttrSkipReason); v.AsString() == "clock_skew" {
						skipped += p.Value
					}
				}
			}
		}
	}
	if skipped != 1 {
		t.Errorf("wait.skipped = %d, want 1", skipped)
	}
}
