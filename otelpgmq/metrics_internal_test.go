package otelpgmq

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
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

// Sends to and reads from queues that do not exist keep nothing per name:
// the span options and success sets of a queue are kept only once an
// operation on it succeeds, and the error sets are bounded (above).
func TestMadeUpQueuesKeepNothing(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	tr := NewTracer(WithMeterProvider(mp))
	notFound := &pgmqclient.OpError{Op: "send", Err: pgmqclient.ErrQueueNotFound}
	ctx := context.Background()
	for i := range 50 {
		q := fmt.Sprintf("made_up_%d", i)
		c := tr.TraceSendStart(ctx, nil, pgmqclient.TraceSendStartData{Queue: q, Headers: new(pgmqclient.HeaderCarrier)})
		tr.TraceSendEnd(c, nil, pgmqclient.TraceSendEndData{Err: notFound})
		c = tr.TraceReceiveStart(ctx, nil, pgmqclient.TraceReceiveStartData{Queue: q, Operation: pgmqclient.OperationRead, Qty: 1})
		tr.TraceReceiveEnd(c, nil, pgmqclient.TraceReceiveEndData{Err: notFound})
	}
	starts, successSets := 0, 0
	tr.starts.Range(func(any, any) bool { starts++; return true })
	tr.inst.sets.Range(func(k, _ any) bool {
		if k.(setKey).errType == "" {
			successSets++
		}
		return true
	})
	if starts != 0 || successSets != 0 {
		t.Fatalf("after failed calls to 50 made-up queues: %d span options and %d success sets kept, want 0", starts, successSets)
	}
	// A success keeps them, and the counter counts under the kept set.
	c := tr.TraceSendStart(ctx, nil, pgmqclient.TraceSendStartData{Queue: "real", Headers: new(pgmqclient.HeaderCarrier)})
	tr.TraceSendEnd(c, nil, pgmqclient.TraceSendEndData{MsgID: 1})
	c = tr.TraceSendStart(ctx, nil, pgmqclient.TraceSendStartData{Queue: "real", Headers: new(pgmqclient.HeaderCarrier)})
	tr.TraceSendEnd(c, nil, pgmqclient.TraceSendEndData{MsgID: 2})
	if n := tr.inst.lookup(setKey{queue: "real", opName: "send"}).sent.Load(); n != 2 {
		t.Fatalf("sent under the kept set = %d, want 2", n)
	}
}
