package otelpgmq_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// sum returns the value of the counter point whose attributes include want.
func sum(t *testing.T, m metricdata.Metrics, want ...attribute.KeyValue) int64 {
	t.Helper()
	d, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, want an int64 sum", m.Name, m.Data)
	}
	var n int64
	for _, p := range d.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func histogram(t *testing.T, m metricdata.Metrics, want ...attribute.KeyValue) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	d, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, want a float64 histogram", m.Name, m.Data)
	}
	var out []metricdata.HistogramDataPoint[float64]
	for _, p := range d.DataPoints {
		if matches(p.Attributes, want) {
			out = append(out, p)
		}
	}
	return out
}

// Every instrument records what the README says, with the conventions'
// buckets, and no metric attribute names a message.
func TestMetrics(t *testing.T) {
	f := setup(t, []string{"mq"})
	q := attribute.String("messaging.destination.name", "mq")
	if _, err := f.client.SendBatch(f.ctx, "mq", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`2`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Send(f.ctx, "missing", json.RawMessage(`{}`)); err == nil {
		t.Fatal("send to a missing queue succeeded")
	}
	first := f.read(t, "mq", 0, 2) // vt 0: both visible again at once
	again := f.read(t, "mq", time.Minute, 2)
	if len(first) != 2 || len(again) != 2 {
		t.Fatalf("reads returned %d and %d messages", len(first), len(again))
	}
	var procSpan sdktrace.ReadOnlySpan
	if err := f.tr.Process(f.ctx, "mq", nil, again[0], func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	procSpan = f.one(t, "process mq")
	if _, err := f.client.DeleteBatch(f.ctx, "mq", []int64{again[0].ID, again[1].ID}); err != nil {
		t.Fatal(err)
	}

	got := f.collect(t)
	sent := got[otelpgmq.MetricSentMessages]
	if n := sum(t, sent, q, attribute.String("messaging.system", "pgmq")); n != 2 {
		t.Errorf("sent.messages for mq = %d, want 2", n)
	}
	if n := sum(t, sent, attribute.String("messaging.destination.name", "missing"), attribute.String("error.type", "queue_not_found")); n != 1 {
		t.Errorf("failed sends = %d, want 1 with error.type", n)
	}
	if n := sum(t, got[otelpgmq.MetricConsumedMessages], q, attribute.String("messaging.operation.name", "read")); n != 4 {
		t.Errorf("consumed.messages = %d, want 4", n)
	}
	if n := sum(t, got[otelpgmq.MetricRedeliveries], q); n != 2 {
		t.Errorf("redeliveries = %d, want 2 (the second read)", n)
	}
	waits := histogram(t, got[otelpgmq.MetricWaitDuration], q)
	if len(waits) != 1 || waits[0].Count != 2 || !slices.Equal(waits[0].Bounds, otelpgmq.WaitBuckets) {
		t.Errorf("wait.duration points %+v, want 2 first reads with WaitBuckets", waits)
	}
	for _, op := range []struct{ name, typ string }{{"send_batch", "send"}, {"read", "receive"}, {"delete", "settle"}} {
		pts := histogram(t, got[otelpgmq.MetricOperationDuration], q,
			attribute.String("messaging.operation.name", op.name), attribute.String("messaging.operation.type", op.typ))
		if len(pts) != 1 || !slices.Equal(pts[0].Bounds, otelpgmq.DurationBuckets) {
			t.Errorf("operation.duration %s/%s points %+v", op.name, op.typ, pts)
		}
	}
	proc := histogram(t, got[otelpgmq.MetricProcessDuration], q, attribute.String("messaging.operation.name", "process"))
	if len(proc) != 1 || proc[0].Count != 1 || !slices.Equal(proc[0].Bounds, otelpgmq.DurationBuckets) {
		t.Fatalf("process.duration points %+v", proc)
	}
	// The exemplar points at the process span.
	ex := proc[0].Exemplars
	traceID, spanID := procSpan.SpanContext().TraceID(), procSpan.SpanContext().SpanID()
	if len(ex) != 1 || string(ex[0].TraceID) != string(traceID[:]) || string(ex[0].SpanID) != string(spanID[:]) {
		t.Errorf("process.duration exemplars %+v, want the process span %v", ex, procSpan.SpanContext())
	}
	for name, m := range got {
		for _, set := range attributeSets(m) {
			if _, ok := set.Value("messaging.message.id"); ok {
				t.Errorf("%s carries a message id: %v", name, set)
			}
		}
	}
}

// pop does not count a read (read_ct stays as it was): a message read
// once and then popped is a redelivery, not a second first read, and a
// message popped unread is a first read.
func TestPopAfterReadIsRedelivery(t *testing.T) {
	f := setup(t, []string{"pq"})
	q := attribute.String("messaging.destination.name", "pq")
	for range 2 {
		if _, err := f.client.Send(f.ctx, "pq", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.read(t, "pq", 0, 1); len(got) != 1 { // vt 0: visible again at once
		t.Fatalf("read %d messages", len(got))
	}
	popped, err := f.client.Pop(f.ctx, "pq", 2)
	if err != nil || len(popped) != 2 {
		t.Fatalf("pop: %d messages, %v", len(popped), err)
	}
	got := f.collect(t)
	if n := sum(t, got[otelpgmq.MetricRedeliveries], q); n != 1 {
		t.Errorf("redeliveries = %d, want 1 (the message read, then popped)", n)
	}
	waits := histogram(t, got[otelpgmq.MetricWaitDuration], q)
	if len(waits) != 1 || waits[0].Count != 2 {
		t.Errorf("wait.duration points %+v, want 2 first reads (the read, and the pop of the unread message)", waits)
	}
}

func attributeSets(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	}
	return out
}

// The conventions' buckets are advice: a View replaces them.
func TestViewOverridesBuckets(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: otelpgmq.MetricProcessDuration},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: []float64{1, 60}}})
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithView(view))
	defer mp.Shutdown(context.Background())
	tr := otelpgmq.NewTracer(otelpgmq.WithMeterProvider(mp))
	if err := tr.Process(context.Background(), "v", nil, pgmqclient.Message{ID: 1}, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != otelpgmq.MetricProcessDuration {
				continue
			}
			pts := m.Data.(metricdata.Histogram[float64]).DataPoints
			if len(pts) != 1 || !slices.Equal(pts[0].Bounds, []float64{1, 60}) {
				t.Errorf("process.duration points %+v, want the View's bounds", pts)
			}
			return
		}
	}
	t.Error("no messaging.process.duration collected")
}
