package otelpgmq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// conventionBuckets are the explicit bucket boundaries messaging-metrics.md
// (semconv v1.43.0) gives messaging.client.operation.duration and
// messaging.process.duration.
var conventionBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// spanWant is what the conventions ask of one span.
type spanWant struct {
	op     string             // messaging.operation.name; the name is "<op> <queue>"
	opType attribute.KeyValue // messaging.operation.type
	kind   trace.SpanKind
	parent trace.SpanContext   // checked when valid
	links  []trace.SpanContext // exactly these, in any order
	msgID  int64               // messaging.message.id when one message; 0: absent
	batch  int                 // messaging.batch.message_count; 0: absent
	failed bool                // error.type present
}

// step runs fn and returns the spans that ended during it.
func (f *fixture) step(t *testing.T, fn func()) []sdktrace.ReadOnlySpan {
	t.Helper()
	before := len(f.spans.Ended())
	fn()
	return f.spans.Ended()[before:]
}

// checkSpan holds s to w on queue of server srv: name, kind, parent,
// links, and the attributes the conventions require, require when
// available (all of them are), and recommend where this module sets them.
func checkSpan(t *testing.T, s sdktrace.ReadOnlySpan, queue string, srv pgmqclient.ServerAddress, w spanWant) {
	t.Helper()
	attrs := attribute.NewSet(s.Attributes()...)
	opName, _ := attrs.Value(semconv.MessagingOperationNameKey)
	if want := opName.AsString() + " " + queue; s.Name() != want || opName.AsString() != w.op {
		t.Errorf("span %q: name must be %q (operation name %q), want operation %q", s.Name(), want, opName.AsString(), w.op)
	}
	if s.SpanKind() != w.kind {
		t.Errorf("span %q: kind %v, want %v", s.Name(), s.SpanKind(), w.kind)
	}
	if w.parent.IsValid() && (s.Parent().SpanID() != w.parent.SpanID() || s.Parent().TraceID() != w.parent.TraceID()) {
		t.Errorf("span %q: parent %v, want %v", s.Name(), s.Parent().SpanID(), w.parent.SpanID())
	}
	var links []string
	for _, l := range s.Links() {
		links = append(links, l.SpanContext.TraceID().String()+"/"+l.SpanContext.SpanID().String())
	}
	var want []string
	for _, l := range w.links {
		want = append(want, l.TraceID().String()+"/"+l.SpanID().String())
	}
	slices.Sort(links)
	slices.Sort(want)
	if !slices.Equal(links, want) {
		t.Errorf("span %q: links %v, want %v", s.Name(), links, want)
	}
	d := messagingconv.ClientOperationDuration{}
	must := []attribute.KeyValue{
		semconv.MessagingSystemKey.String(otelpgmq.System), // required
		semconv.MessagingOperationName(w.op),               // required
		d.AttrDestinationName(queue),                       // conditionally required: one destination
		w.opType,                                           // conditionally required: applicable
		d.AttrServerAddress(srv.Host),                      // conditionally required: available
		d.AttrServerPort(int(srv.Port)),                    // recommended
	}
	if w.batch > 0 {
		must = append(must, semconv.MessagingBatchMessageCount(w.batch)) // conditionally required: a batch
	}
	if w.msgID > 0 {
		must = append(must, semconv.MessagingMessageID(strconv.FormatInt(w.msgID, 10))) // recommended: one message
	}
	for _, kv := range must {
		if v, ok := attrs.Value(kv.Key); !ok || v != kv.Value {
			t.Errorf("span %q: %s = %v (set %v), want %v", s.Name(), kv.Key, v.String(), ok, kv.Value.String())
		}
	}
	for key, allowed := range map[attribute.Key]bool{
		semconv.MessagingBatchMessageCountKey: w.batch > 0,
		semconv.MessagingMessageIDKey:         w.msgID > 0,
		semconv.ErrorTypeKey:                  w.failed, // if and only if the operation failed
	} {
		if _, ok := attrs.Value(key); ok != allowed {
			t.Errorf("span %q: %s set %v, want %v", s.Name(), key, ok, allowed)
		}
	}
}

// readmeSpans returns the span rows of docs/tracing.md's table of spans (between
// <!-- spans:start --> and <!-- spans:end -->) as "name kind", the queue
// written <queue>.
func readmeSpans(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/tracing.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<!-- spans:start -->(.*)<!-- spans:end -->`).FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/tracing.md has no <!-- spans:start --> ... <!-- spans:end --> table")
	}
	row := regexp.MustCompile("(?m)^\\| [^|]* \\| `([^`]+)` \\| (PRODUCER|CONSUMER|CLIENT) \\|")
	var out []string
	for _, r := range row.FindAllSubmatch(m[1], -1) {
		out = append(out, string(r[1])+" "+string(r[2]))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestConformance holds every span and instrument otelpgmq makes to the
// semantic conventions (v1.43.0): each span form (send, send with the
// caller's creation context, batch send with and without create spans,
// create, each receive form, process with a link and with a parent, each
// settle, failures) for name, kind, parent, links and attributes; each
// instrument for name, unit, kind, attributes and buckets; the send and
// settle durations of span and metric for being one measurement; and the
// docs/tracing.md's table of spans for listing exactly these.
func TestConformance(t *testing.T) {
	f := setup(t, []string{"c"})
	cfg := f.db.Pool.Config().ConnConfig
	srv := pgmqclient.ServerAddress{Host: cfg.Host, Port: cfg.Port}
	noCreate := pgmqclient.New(f.db.Pool, pgmqclient.WithTracer(otelpgmq.NewTracer(
		otelpgmq.WithTracerProvider(f.tp), otelpgmq.WithPropagator(w3c), otelpgmq.WithoutCreateSpans())))
	withParent := otelpgmq.NewTracer(otelpgmq.WithTracerProvider(f.tp), otelpgmq.WithPropagator(w3c), otelpgmq.WithProcessParent())
	ctx := f.ctx
	producer, pspan := f.tp.Tracer("test").Start(ctx, "producer")
	defer pspan.End()
	ambient := pspan.SpanContext()
	caller := func(n byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, n}, SpanID: trace.SpanID{2, n},
			TraceFlags: trace.FlagsSampled, Remote: true})
	}
	callerHeaders := func(sc trace.SpanContext) json.RawMessage {
		return json.RawMessage(`{"traceparent":"` + traceparent(sc) + `"}`)
	}
	payload := json.RawMessage(`{}`)
	var seen []string // "name kind", the queue written <queue>
	check := func(s sdktrace.ReadOnlySpan, queue string, w spanWant) {
		t.Helper()
		checkSpan(t, s, queue, srv, w)
		seen = append(seen, strings.TrimSuffix(s.Name(), " "+queue)+" <queue>"+" "+strings.ToUpper(s.SpanKind().String()))
	}
	one := func(spans []sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(spans) != 1 {
			t.Fatalf("%d spans %v, want 1", len(spans), names(spans))
		}
		return spans[0]
	}
	creation := map[int64]trace.SpanContext{} // message id -> the creation context it carries

	// Send: PRODUCER, its context the creation context.
	var id int64
	send := one(f.step(t, func() {
		var err error
		if id, err = f.client.Send(producer, "c", payload); err != nil {
			t.Fatal(err)
		}
	}))
	check(send, "c", spanWant{op: "send", opType: semconv.MessagingOperationTypeSend, kind: trace.SpanKindProducer,
		parent: ambient, msgID: id})
	creation[id] = send.SpanContext()

	// Send with the caller's own creation context: untouched, CLIENT,
	// linked to it.
	own := one(f.step(t, func() {
		var err error
		if id, err = f.client.Send(producer, "c", payload, pgmqclient.WithHeaders(callerHeaders(caller(1)))); err != nil {
			t.Fatal(err)
		}
	}))
	check(own, "c", spanWant{op: "send", opType: semconv.MessagingOperationTypeSend, kind: trace.SpanKindClient,
		parent: ambient, links: []trace.SpanContext{caller(1)}, msgID: id})
	creation[id] = caller(1)

	// Batch send with create spans: CLIENT, linked to each create span;
	// a message with the caller's context gets no create span and a link.
	var ids []int64
	batch := f.step(t, func() {
		var err error
		if ids, err = f.client.SendBatch(producer, "c", []json.RawMessage{payload, payload, payload},
			pgmqclient.WithBatchHeaders([]json.RawMessage{nil, nil, callerHeaders(caller(2))})); err != nil {
			t.Fatal(err)
		}
	})
	if len(batch) != 3 {
		t.Fatalf("batch send made spans %v, want two create spans and the send", names(batch))
	}
	sendBatch := batch[2]
	for i, c := range batch[:2] {
		check(c, "c", spanWant{op: "create", opType: semconv.MessagingOperationTypeCreate, kind: trace.SpanKindProducer,
			parent: ambient, msgID: ids[i]}) // the send span's sibling, as in the conventions' example
		creation[ids[i]] = c.SpanContext()
	}
	creation[ids[2]] = caller(2)
	check(sendBatch, "c", spanWant{op: "send_batch", opType: semconv.MessagingOperationTypeSend, kind: trace.SpanKindClient,
		parent: ambient, links: []trace.SpanContext{batch[0].SpanContext(), batch[1].SpanContext(), caller(2)}, batch: 3})

	// Batch send without create spans: PRODUCER, its context in each message.
	plain := one(f.step(t, func() {
		var err error
		if ids, err = noCreate.SendBatch(producer, "c", []json.RawMessage{payload, payload}); err != nil {
			t.Fatal(err)
		}
	}))
	check(plain, "c", spanWant{op: "send_batch", opType: semconv.MessagingOperationTypeSend, kind: trace.SpanKindProducer,
		parent: ambient, batch: 2})
	for _, i := range ids {
		creation[i] = plain.SpanContext()
	}

	// Each receive form: CLIENT, linked to each message's creation context.
	links := func(msgs []pgmqclient.Message) []trace.SpanContext {
		var out []trace.SpanContext
		for _, m := range msgs {
			out = append(out, creation[m.ID])
		}
		return out
	}
	var msgs, polled, popped, rest []pgmqclient.Message
	recv := one(f.step(t, func() { msgs = f.read(t, "c", time.Minute, 1) }))
	check(recv, "c", spanWant{op: "read", opType: semconv.MessagingOperationTypeReceive, kind: trace.SpanKindClient,
		links: links(msgs), msgID: msgs[0].ID})
	recv = one(f.step(t, func() {
		var err error
		if polled, err = f.client.ReadWithPoll(ctx, "c", time.Minute, 2, time.Second, 10*time.Millisecond); err != nil || len(polled) != 2 {
			t.Fatalf("read_with_poll: %d messages, %v", len(polled), err)
		}
	}))
	check(recv, "c", spanWant{op: "read_with_poll", opType: semconv.MessagingOperationTypeReceive, kind: trace.SpanKindClient,
		links: links(polled), batch: 2})
	recv = one(f.step(t, func() {
		var err error
		if popped, err = f.client.Pop(ctx, "c", 1); err != nil || len(popped) != 1 {
			t.Fatalf("pop: %d messages, %v", len(popped), err)
		}
	}))
	check(recv, "c", spanWant{op: "pop", opType: semconv.MessagingOperationTypeReceive, kind: trace.SpanKindClient,
		links: links(popped), msgID: popped[0].ID})

	// Process: CONSUMER; by default the caller's span is the parent and the
	// creation context a link; with WithProcessParent the creation context
	// is the parent, and both are links.
	consumer, cspan := f.tp.Tracer("test").Start(ctx, "consumer")
	defer cspan.End()
	m := msgs[0]
	proc := one(f.step(t, func() {
		if err := f.tr.Process(consumer, "c", nil, m, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}))
	check(proc, "c", spanWant{op: "process", opType: semconv.MessagingOperationTypeProcess, kind: trace.SpanKindConsumer,
		parent: cspan.SpanContext(), links: []trace.SpanContext{creation[m.ID]}, msgID: m.ID})
	proc = one(f.step(t, func() {
		if err := withParent.Process(consumer, "c", nil, m, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}))
	check(proc, "c", spanWant{op: "process", opType: semconv.MessagingOperationTypeProcess, kind: trace.SpanKindConsumer,
		parent: creation[m.ID], links: []trace.SpanContext{creation[m.ID], cspan.SpanContext()}, msgID: m.ID})

	// Each settle: CLIENT.
	settle := func(op string, fn func() error, msgID int64, n int) {
		t.Helper()
		s := one(f.step(t, func() {
			if err := fn(); err != nil {
				t.Fatalf("%s: %v", op, err)
			}
		}))
		check(s, "c", spanWant{op: op, opType: semconv.MessagingOperationTypeSettle, kind: trace.SpanKindClient, msgID: msgID, batch: n})
	}
	settle("delete", func() error { _, err := f.client.Delete(ctx, "c", m.ID); return err }, m.ID, 0)
	settle("archive", func() error { _, err := f.client.Archive(ctx, "c", polled[0].ID); return err }, polled[0].ID, 0)
	settle("set_vt", func() error {
		_, err := f.client.SetVisibilityTimeout(ctx, "c", polled[1].ID, 0)
		return err
	}, polled[1].ID, 0)
	f.step(t, func() { rest = f.read(t, "c", time.Minute, 10) })
	if len(rest) != 4 {
		t.Fatalf("%d messages left, want 4", len(rest))
	}
	settle("delete", func() error { _, err := f.client.DeleteBatch(ctx, "c", []int64{rest[0].ID, rest[1].ID}); return err }, 0, 2)
	settle("archive", func() error { _, err := f.client.ArchiveBatch(ctx, "c", []int64{rest[2].ID, rest[3].ID}); return err }, 0, 2)

	// Failures carry error.type, and nothing else changes.
	fail := one(f.step(t, func() {
		if _, err := f.client.Send(producer, "missing", payload); err == nil {
			t.Fatal("send to a missing queue succeeded")
		}
	}))
	check(fail, "missing", spanWant{op: "send", opType: semconv.MessagingOperationTypeSend, kind: trace.SpanKindProducer,
		parent: ambient, failed: true})
	fail = one(f.step(t, func() {
		if _, err := f.client.Read(ctx, "missing", time.Minute, 1); err == nil {
			t.Fatal("read on a missing queue succeeded")
		}
	}))
	check(fail, "missing", spanWant{op: "read", opType: semconv.MessagingOperationTypeReceive, kind: trace.SpanKindClient, failed: true})

	t.Run("docs/tracing.md table of spans", func(t *testing.T) {
		slices.Sort(seen)
		if got, want := slices.Compact(seen), readmeSpans(t); !slices.Equal(got, want) {
			t.Errorf("spans made %q, docs/tracing.md's table lists %q", got, want)
		}
	})
	t.Run("instruments", func(t *testing.T) { checkInstruments(t, f, srv) })
	t.Run("one measurement per send and settle", func(t *testing.T) {
		checkSameMeasurement(t, f, plain.SpanContext().SpanID()) // noCreate records on no meter of f's
	})
}

// checkInstruments holds every instrument of the scope to the conventions
// (or, for pgmq.*, to this module's table): name, unit, kind, buckets, and
// each point's attributes.
func checkInstruments(t *testing.T, f *fixture, srv pgmqclient.ServerAddress) {
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	type want struct {
		unit    string
		hist    bool
		buckets []float64
		ops     []string // messaging.operation.name values; nil: not an attribute
		opType  bool     // messaging.operation.type set
		server  bool     // server.address and server.port set
	}
	wants := map[string]want{
		messagingconv.ClientSentMessages{}.Name():      {unit: messagingconv.ClientSentMessages{}.Unit(), ops: []string{"send", "send_batch"}, server: true},
		messagingconv.ClientConsumedMessages{}.Name():  {unit: messagingconv.ClientConsumedMessages{}.Unit(), ops: []string{"read", "read_with_poll", "pop"}, server: true},
		messagingconv.ClientOperationDuration{}.Name(): {unit: messagingconv.ClientOperationDuration{}.Unit(), hist: true, buckets: conventionBuckets, opType: true, server: true, ops: []string{"send", "send_batch", "read", "read_with_poll", "pop", "delete", "archive", "set_vt"}},
		messagingconv.ProcessDuration{}.Name():         {unit: messagingconv.ProcessDuration{}.Unit(), hist: true, buckets: conventionBuckets, server: true, ops: []string{"process"}},
		otelpgmq.MetricWaitDuration:                    {unit: "s", hist: true, buckets: otelpgmq.WaitBuckets},
		otelpgmq.MetricRedeliveries:                    {unit: "{message}"},
	}
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelpgmq.ScopeName {
			continue
		}
		if sm.Scope.SchemaURL != semconv.SchemaURL {
			t.Errorf("scope schema URL %q, want %q", sm.Scope.SchemaURL, semconv.SchemaURL)
		}
		for _, m := range sm.Metrics {
			w, ok := wants[m.Name]
			if !ok {
				t.Errorf("instrument %s is not in the table", m.Name)
				continue
			}
			seen[m.Name] = true
			if m.Unit != w.unit {
				t.Errorf("%s: unit %q, want %q", m.Name, m.Unit, w.unit)
			}
			var sets []attribute.Set
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				if !w.hist {
					t.Errorf("%s is a histogram, want a counter", m.Name)
				}
				for _, p := range d.DataPoints {
					if !slices.Equal(p.Bounds, w.buckets) {
						t.Errorf("%s: buckets %v, want %v", m.Name, p.Bounds, w.buckets)
					}
					sets = append(sets, p.Attributes)
				}
			case metricdata.Sum[int64]:
				if w.hist || !d.IsMonotonic {
					t.Errorf("%s is a sum (monotonic %v), want a %s", m.Name, d.IsMonotonic, map[bool]string{true: "histogram", false: "counter"}[w.hist])
				}
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			default:
				t.Errorf("%s is %T", m.Name, m.Data)
			}
			ops := map[string]bool{}
			for _, set := range sets {
				checkMetricAttrs(t, m.Name, set, srv, w.ops != nil, w.opType, w.server)
				if v, ok := set.Value(semconv.MessagingOperationNameKey); ok {
					ops[v.AsString()] = true
				}
			}
			for _, op := range w.ops {
				if !ops[op] {
					t.Errorf("%s: no point for operation %q (have %v)", m.Name, op, ops)
				}
			}
		}
	}
	for name := range wants {
		if !seen[name] {
			t.Errorf("instrument %s recorded nothing", name)
		}
	}
}

// checkMetricAttrs holds one point's attributes: required ones, the
// conditionally required when available, error.type only with a failure
// (here: the queue "missing"), and nothing that names a message.
func checkMetricAttrs(t *testing.T, name string, set attribute.Set, srv pgmqclient.ServerAddress, op, opType, server bool) {
	t.Helper()
	has := func(k attribute.Key) bool { _, ok := set.Value(k); return ok }
	if v, _ := set.Value(semconv.MessagingSystemKey); v.AsString() != otelpgmq.System {
		t.Errorf("%s %v: messaging.system %q", name, set.ToSlice(), v.AsString())
	}
	dest, _ := set.Value(semconv.MessagingDestinationNameKey)
	if dest.AsString() == "" {
		t.Errorf("%s %v: no messaging.destination.name", name, set.ToSlice())
	}
	if has(semconv.MessagingOperationNameKey) != op || has(semconv.MessagingOperationTypeKey) != opType {
		t.Errorf("%s %v: operation name set %v (want %v), type set %v (want %v)", name, set.ToSlice(),
			has(semconv.MessagingOperationNameKey), op, has(semconv.MessagingOperationTypeKey), opType)
	}
	d := messagingconv.ClientSentMessages{}
	if server {
		for _, kv := range []attribute.KeyValue{d.AttrServerAddress(srv.Host), d.AttrServerPort(int(srv.Port))} {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				t.Errorf("%s %v: %s = %v, want %v", name, set.ToSlice(), kv.Key, v.String(), kv.Value.String())
			}
		}
	}
	if failed := dest.AsString() == "missing"; has(semconv.ErrorTypeKey) != failed {
		t.Errorf("%s %v: error.type set %v, want %v", name, set.ToSlice(), has(semconv.ErrorTypeKey), failed)
	}
	if has(semconv.MessagingMessageIDKey) {
		t.Errorf("%s %v: a metric attribute names a message", name, set.ToSlice())
	}
}

// checkSameMeasurement: for each send and settle operation, the durations
// messaging.client.operation.duration recorded add up to exactly the
// durations of its spans: span and metric are one measurement, the same
// start and end. Spans of another tracer (skip) are left out.
func checkSameMeasurement(t *testing.T, f *fixture, skip ...trace.SpanID) {
	spans := map[string]float64{}
	for _, s := range f.spans.Ended() {
		if slices.Contains(skip, s.SpanContext().SpanID()) {
			continue
		}
		a := attribute.NewSet(s.Attributes()...)
		op, _ := a.Value(semconv.MessagingOperationNameKey)
		dest, _ := a.Value(semconv.MessagingDestinationNameKey)
		if dest.AsString() == "c" && slices.Contains([]string{"send", "send_batch", "delete", "archive", "set_vt"}, op.AsString()) {
			spans[op.AsString()] += s.EndTime().Sub(s.StartTime()).Seconds()
		}
	}
	got := f.collect(t)[messagingconv.ClientOperationDuration{}.Name()]
	for op, want := range spans {
		pts := histogram(t, got, semconv.MessagingDestinationName("c"), semconv.MessagingOperationName(op))
		if len(pts) != 1 || pts[0].Sum != want {
			t.Errorf("%s: operation.duration points %v, want one whose sum is the spans' %v s", op, pts, want)
		}
	}
	if len(spans) != 5 {
		t.Errorf("spans of %d send and settle operations, want 5: %v", len(spans), spans)
	}
}

// Once maxErrorSets failure sets are kept, further failures are counted in
// an overflow set that keeps messaging.operation.name, so queries that
// filter on the operation still see them.
func TestOverflowKeepsOperationName(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(3000))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tr := otelpgmq.NewTracer(otelpgmq.WithMeterProvider(mp), otelpgmq.WithPropagator(w3c))
	ctx := t.Context()
	notFound := &pgmqclient.OpError{Op: "send", Err: pgmqclient.ErrQueueNotFound}
	const extra = 7
	for i := range 1000 + extra {
		c := tr.TraceSendStart(ctx, nil, pgmqclient.TraceSendStartData{Queue: fmt.Sprintf("made_up_%d", i), Headers: new(pgmqclient.HeaderCarrier)})
		tr.TraceSendEnd(c, nil, pgmqclient.TraceSendEndData{Err: notFound})
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	overflow := attribute.Bool("otel.metric.overflow", true)
	found := map[string]bool{}
	total := map[string]uint64{} // failures counted, overflow included
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var sets []attribute.Set
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					total[m.Name] += uint64(p.Value)
					sets = append(sets, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					total[m.Name] += p.Count
					sets = append(sets, p.Attributes)
				}
			}
			for _, set := range sets {
				if matches(set, []attribute.KeyValue{overflow}) {
					found[m.Name] = true
					if !matches(set, []attribute.KeyValue{semconv.MessagingOperationName("send")}) {
						t.Errorf("%s overflow set %v lacks messaging.operation.name", m.Name, set.ToSlice())
					}
				}
			}
		}
	}
	for _, name := range []string{messagingconv.ClientSentMessages{}.Name(), messagingconv.ClientOperationDuration{}.Name()} {
		if !found[name] || total[name] != 1000+extra {
			t.Errorf("%s: overflow point %v, %d failures counted, want one and %d", name, found[name], total[name], 1000+extra)
		}
	}
}
