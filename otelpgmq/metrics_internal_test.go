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
// set; error sets are kept up to maxErrorSets, and a further error type
// counts as _OTHER instead of growing the set without end.
func TestErrorSetsBoundedToOther(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithCardinalityLimit(maxErrorSets+10))
	defer mp.Shutdown(context.Background())
	in := newInstruments(mp)
	for i := range maxErrorSets + 5 {
		in.attrs(setKey{queue: "q", opName: "send", errType: fmt.Sprintf("type%d", i)}).sent.Add(1)
	}
	in.attrs(setKey{queue: "q", opName: "send"}).sent.Add(3)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	byType := map[string]int64{}
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
				v, _ := dp.Attributes.Value(attribute.Key("error.type"))
				byType[v.AsString()] += dp.Value
			}
		}
	}
	if points != maxErrorSets+2 || byType[errTypeOther] != 5 || byType[""] != 3 || byType["type0"] != 1 {
		t.Fatalf("%d points; _OTHER %d, success %d, type0 %d; want %d points, 5, 3, 1",
			points, byType[errTypeOther], byType[""], byType["type0"], maxErrorSets+2)
	}
}
