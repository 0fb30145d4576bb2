package otelpgmq

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The asynchronous counters report what was added under each attribute
// set; error sets are kept up to maxErrorSets, and failures past it (here
// sends to made-up queues) are counted in the one overflow set instead of
// growing the sets without end.
func TestErrorSetsBoundedByOverflow(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithCardinalityLimit(maxErrorSets+10))
	defer mp.Shutdown(context.Background())
	in := newInstruments(mp)
	for i := range maxErrorSets + 5 {
		in.attrs(setKey{queue: fmt.Sprintf("made_up_%d", i), opName: "send", errType: "queue_not_found"}).sent.Add(1)
	}
	in.attrs(setKey{queue: "q", opName: "send"}).sent.Add(3)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var overflow, success, first int64
	points := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricSentMessages {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
				t.Fatalf("%s is %T (monotonic, cumulative expected)", m.Name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				points++
				q, _ := dp.Attributes.Value(attribute.Key("messaging.destination.name"))
				switch o, _ := dp.Attributes.Value(attribute.Key(attrOverflow)); {
				case o.AsBool():
					overflow += dp.Value
				case q.AsString() == "q":
					success += dp.Value
				case q.AsString() == "made_up_0":
					first += dp.Value
				}
			}
		}
	}
	if points != maxErrorSets+2 || overflow != 5 || success != 3 || first != 1 {
		t.Fatalf("%d points; overflow %d, success %d, made_up_0 %d; want %d points, 5, 3, 1",
			points, overflow, success, first, maxErrorSets+2)
	}
}
