package otelpgmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// The trace context goes into real PGMQ headers next to the caller's keys,
// comes back out at receive and process, and the process span is linked to
// the send span (not its child) by default.
func TestSendReceiveProcessLinked(t *testing.T) {
	f := setup(t, []string{"jobs"})
	producer, parent := f.tp.Tracer("test").Start(f.ctx, "producer work")
	id, err := f.client.Send(producer, "jobs", json.RawMessage(`{"n":1}`),
		pgmqclient.WithHeaders(json.RawMessage(`{"tenant":"a","x-pgmq-group":"g"}`)))
	if err != nil {
		t.Fatal(err)
	}
	parent.End()

	send := f.one(t, "send jobs")
	if send.SpanKind() != trace.SpanKindProducer || send.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("send span kind %v parent %v, want producer under the caller's span", send.SpanKind(), send.Parent())
	}
	for k, v := range map[string]string{
		"messaging.system": "pgmq", "messaging.destination.name": "jobs", "messaging.operation.type": "send",
		"messaging.operation.name": "send", "messaging.message.id": strconv.FormatInt(id, 10),
	} {
		if got := attr(send, k); got != v {
			t.Errorf("send span %s = %q, want %q", k, got, v)
		}
	}

	msgs := f.read(t, "jobs", time.Minute, 5)
	if len(msgs) != 1 {
		t.Fatalf("read %d messages", len(msgs))
	}
	m := msgs[0]
	if got, want := headerString(t, m, "traceparent"), traceparent(send.SpanContext()); got != want {
		t.Errorf("traceparent header = %q, want the send span's %q", got, want)
	}
	if headerString(t, m, "tenant") != "a" || headerString(t, m, "x-pgmq-group") != "g" {
		t.Errorf("caller's headers lost: %s", m.Headers)
	}

	recv := f.one(t, "read jobs")
	if recv.SpanKind() != trace.SpanKindClient || len(recv.Links()) != 1 ||
		recv.Links()[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("receive span kind %v links %v, want a client span linked to the send", recv.SpanKind(), recv.Links())
	}
	if attr(recv, "messaging.operation.type") != "receive" || attr(recv, "messaging.operation.name") != "read" ||
		attr(recv, "messaging.pgmq.message.read_count") != "1" {
		t.Errorf("receive attributes %v", recv.Attributes())
	}

	consumer, loop := f.tp.Tracer("test").Start(f.ctx, "consumer loop")
	var inFn trace.SpanContext
	kind := f.metrics.Processor("jobs")
	err = f.tr.Process(consumer, "jobs", kind, m, func(ctx context.Context) error {
		inFn = trace.SpanContextFromContext(ctx)
		if kind.Active() != 1 {
			t.Errorf("processor count %d inside Process, want 1", kind.Active())
		}
		return nil
	})
	loop.End()
	if err != nil || kind.Active() != 0 {
		t.Fatalf("Process = %v, count after %d", err, kind.Active())
	}
	proc := f.one(t, "process jobs")
	if proc.SpanKind() != trace.SpanKindConsumer || proc.SpanContext().SpanID() != inFn.SpanID() {
		t.Errorf("process span kind %v, fn saw %v", proc.SpanKind(), inFn)
	}
	if proc.Parent().SpanID() != loop.SpanContext().SpanID() {
		t.Errorf("process parent %v, want the consumer's span", proc.Parent())
	}
	if len(proc.Links()) != 1 || proc.Links()[0].SpanContext.SpanID() != send.SpanContext().SpanID() ||
		proc.Links()[0].SpanContext.TraceID() != send.SpanContext().TraceID() {
		t.Errorf("process links %v, want one to the send span", proc.Links())
	}
	if attr(proc, "messaging.message.id") != strconv.FormatInt(id, 10) || attr(proc, "messaging.operation.type") != "process" {
		t.Errorf("process attributes %v", proc.Attributes())
	}

	if _, err := f.client.Archive(f.ctx, "jobs", m.ID); err != nil {
		t.Fatal(err)
	}
	arch := f.one(t, "archive jobs")
	if arch.SpanKind() != trace.SpanKindClient || attr(arch, "messaging.operation.type") != "settle" ||
		attr(arch, "messaging.message.id") != strconv.FormatInt(id, 10) {
		t.Errorf("archive span %v %v", arch.SpanKind(), arch.Attributes())
	}
}

// WithProcessParent makes the process span a child of the send span: one
// trace from producer to processor.
func TestProcessParentOption(t *testing.T) {
	f := setup(t, []string{"jobs"}, otelpgmq.WithProcessParent())
	if _, err := f.client.Send(f.ctx, "jobs", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	m := f.read(t, "jobs", time.Minute, 1)[0]
	if err := f.tr.Process(f.ctx, "jobs", nil, m, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	send, proc := f.one(t, "send jobs"), f.one(t, "process jobs")
	if proc.Parent().SpanID() != send.SpanContext().SpanID() || proc.SpanContext().TraceID() != send.SpanContext().TraceID() ||
		!proc.Parent().IsRemote() || len(proc.Links()) != 1 || proc.Links()[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("process parent %v links %v, want the send span %v as remote parent and link", proc.Parent(), proc.Links(), send.SpanContext())
	}
}

// A batch gets one create span per message, each message carrying its own
// create span's context; WithoutCreateSpans gives every message the send
// span's context.
func TestSendBatchCreateSpans(t *testing.T) {
	for _, create := range []bool{true, false} {
		t.Run(map[bool]string{true: "create", false: "without"}[create], func(t *testing.T) {
			var opts []otelpgmq.Option
			if !create {
				opts = append(opts, otelpgmq.WithoutCreateSpans())
			}
			f := setup(t, []string{"b"}, opts...)
			ids, err := f.client.SendBatch(f.ctx, "b", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`2`), json.RawMessage(`3`)})
			if err != nil {
				t.Fatal(err)
			}
			send := f.one(t, "send_batch b")
			if attr(send, "messaging.batch.message_count") != "3" || attr(send, "messaging.operation.name") != "send_batch" {
				t.Errorf("send attributes %v", send.Attributes())
			}
			msgs := f.read(t, "b", time.Minute, 3)
			creates := f.ended("create b")
			if !create {
				if len(creates) != 0 {
					t.Errorf("%d create spans with WithoutCreateSpans", len(creates))
				}
				for _, m := range msgs {
					if headerString(t, m, "traceparent") != traceparent(send.SpanContext()) {
						t.Errorf("message %d traceparent %q, want the send span's", m.ID, headerString(t, m, "traceparent"))
					}
				}
				return
			}
			if len(creates) != 3 {
				t.Fatalf("%d create spans, want 3", len(creates))
			}
			byID := map[string]sdktrace.ReadOnlySpan{}
			for _, c := range creates {
				if c.Parent().IsValid() || c.SpanKind() != trace.SpanKindProducer || !linked(send, c) ||
					attr(c, "messaging.operation.type") != "create" {
					t.Errorf("create span %v parent %v", c.Attributes(), c.Parent())
				}
				byID[attr(c, "messaging.message.id")] = c
			}
			for i, m := range msgs {
				c := byID[strconv.FormatInt(ids[i], 10)]
				if c == nil || headerString(t, m, "traceparent") != traceparent(c.SpanContext()) {
					t.Errorf("message %d traceparent %q, not its create span's", m.ID, headerString(t, m, "traceparent"))
				}
			}
			recv := f.one(t, "read b")
			if len(recv.Links()) != 3 || attr(recv, "messaging.batch.message_count") != "3" {
				t.Errorf("receive links %d, attributes %v", len(recv.Links()), recv.Attributes())
			}
		})
	}
}

// Empty polls make no span unless WithEmptyReceives; Pop and ReadWithPoll
// are receives too.
func TestEmptyReceives(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run(strconv.FormatBool(traced), func(t *testing.T) {
			var opts []otelpgmq.Option
			if traced {
				opts = append(opts, otelpgmq.WithEmptyReceives())
			}
			f := setup(t, []string{"e"}, opts...)
			f.read(t, "e", time.Minute, 1)
			if _, err := f.client.Pop(f.ctx, "e", 1); err != nil {
				t.Fatal(err)
			}
			want := 0
			if traced {
				want = 2
			}
			if got := len(f.ended("read e")) + len(f.ended("pop e")); got != want {
				t.Errorf("%d receive spans for empty receives, want %d", got, want)
			}
			if _, err := f.client.Send(f.ctx, "e", json.RawMessage(`{}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.client.ReadWithPoll(f.ctx, "e", time.Minute, 1, time.Second, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if pops := f.ended("pop e"); len(pops) != want/2 {
				t.Errorf("pop spans %v", names(pops))
			}
			if spans := f.ended("read_with_poll e"); len(spans) != 1 || attr(spans[0], "messaging.operation.name") != "read_with_poll" {
				t.Errorf("read_with_poll spans %v", names(spans))
			}
		})
	}
}

// Failures set the span status and error.type.
func TestErrorsOnSpans(t *testing.T) {
	f := setup(t, nil)
	if _, err := f.client.Send(f.ctx, "missing", json.RawMessage(`{}`)); !errors.Is(err, pgmqclient.ErrQueueNotFound) {
		t.Fatalf("send to a missing queue: %v", err)
	}
	send := f.one(t, "send missing")
	if send.Status().Code != codes.Error || attr(send, "error.type") != "queue_not_found" {
		t.Errorf("send span status %v error.type %q", send.Status(), attr(send, "error.type"))
	}
	if _, err := f.client.Delete(f.ctx, "missing", 1); err == nil {
		t.Fatal("delete on a missing queue succeeded")
	}
	if d := f.one(t, "delete missing"); attr(d, "error.type") != "queue_not_found" {
		t.Errorf("delete span error.type %q", attr(d, "error.type"))
	}
	if _, err := f.client.Read(f.ctx, "missing", time.Second, 1); err == nil {
		t.Fatal("read on a missing queue succeeded")
	}
	if r := f.one(t, "read missing"); r.Status().Code != codes.Error {
		t.Errorf("a failed receive is traced even without messages: %v", r.Status())
	}
}

// Process records fn's error and a panic, and the processor count falls
// back in both cases.
func TestProcessFailures(t *testing.T) {
	f := setup(t, []string{"p"})
	if _, err := f.client.Send(f.ctx, "p", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	m := f.read(t, "p", time.Minute, 1)[0]
	kind := f.metrics.Processor("p")
	boom := errors.New("boom")
	if err := f.tr.Process(f.ctx, "p", kind, m, func(context.Context) error { return boom }); err != boom {
		t.Fatalf("Process returned %v, want fn's error", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "bad" {
				t.Errorf("recovered %v, want the panic to go on up", r)
			}
		}()
		_ = f.tr.Process(f.ctx, "p", kind, m, func(context.Context) error { panic("bad") })
	}()
	if kind.Active() != 0 {
		t.Errorf("processor count %d after failures", kind.Active())
	}
	spans := f.ended("process p")
	if len(spans) != 2 || spans[0].Status().Code != codes.Error || attr(spans[0], "error.type") != "*errors.errorString" ||
		spans[1].Status().Code != codes.Error || attr(spans[1], "error.type") != "panic" {
		for _, s := range spans {
			t.Logf("%s %v %v", s.Name(), s.Status(), s.Attributes())
		}
		t.Error("process spans do not record the error and the panic")
	}
}

// Baggage travels in the headers when the propagator carries it, and is in
// fn's context.
func TestBaggageAcrossTheQueue(t *testing.T) {
	f := setup(t, []string{"bg"})
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	if _, err := f.client.Send(baggage.ContextWithBaggage(f.ctx, bag), "bg", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	m := f.read(t, "bg", time.Minute, 1)[0]
	if headerString(t, m, "baggage") != "tenant=acme" {
		t.Errorf("baggage header %q", headerString(t, m, "baggage"))
	}
	var got string
	_ = f.tr.Process(f.ctx, "bg", nil, m, func(ctx context.Context) error {
		got = baggage.FromContext(ctx).Member("tenant").Value()
		return nil
	})
	if got != "acme" {
		t.Errorf("baggage in fn = %q", got)
	}
}

// On a 1.5-era server the headers are written; messages without headers
// (sent before instrumentation, or on releases before 1.5) are processed
// without a link.
func TestMessageWithoutHeaders(t *testing.T) {
	f := setup(t, []string{"nh"})
	if _, err := pgmqclient.New(f.db.Pool).Send(f.ctx, "nh", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	m := f.read(t, "nh", time.Minute, 1)[0]
	if m.Headers != nil {
		t.Fatalf("uninstrumented send wrote headers %s", m.Headers)
	}
	if err := f.tr.Process(f.ctx, "nh", nil, m, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if p := f.one(t, "process nh"); len(p.Links()) != 0 || p.Parent().IsValid() {
		t.Errorf("process span of a message without headers: links %v parent %v", p.Links(), p.Parent())
	}
	if r := f.one(t, "read nh"); len(r.Links()) != 0 {
		t.Errorf("receive links %v", r.Links())
	}
}

// On PGMQ before 1.5 (no headers) sends are traced, nothing is
// propagated, and nothing fails.
func TestServerWithoutHeaders(t *testing.T) {
	f := setup(t, []string{"old"})
	f.db.RemoveHeaderSupport(t)
	if _, err := f.client.Send(f.ctx, "old", json.RawMessage(`{}`)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := f.client.SendBatch(f.ctx, "old", []json.RawMessage{json.RawMessage(`1`)}); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	for _, m := range f.read(t, "old", time.Minute, 5) {
		if m.Headers != nil {
			t.Errorf("message %d has headers %s", m.ID, m.Headers)
		}
		if err := f.tr.Process(f.ctx, "old", nil, m, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	s := append(f.ended("send old"), f.ended("send_batch old")...)
	if len(s) != 2 || s[0].Status().Code == codes.Error || s[1].Status().Code == codes.Error {
		t.Errorf("send spans %v", names(s))
	}
	if p := f.ended("process old"); len(p) != 2 || len(p[0].Links()) != 0 {
		t.Errorf("process spans %v", names(p))
	}
}

// Sends that alternate between queues, and operations that alternate on
// one queue, each get their own span name and destination: the options an
// operation remembers from its last call are used only for the same queue.
func TestSpanOptionsAlternatingQueues(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := otelpgmq.NewTracer(otelpgmq.WithTracerProvider(tp), otelpgmq.WithPropagator(w3c))
	ctx := t.Context()
	var want []string
	for i := range 6 {
		q := []string{"a", "b", "c"}[i%3]
		c := tr.TraceSendStart(ctx, nil, pgmqclient.TraceSendStartData{Queue: q, Headers: new(pgmqclient.HeaderCarrier)})
		tr.TraceSendEnd(c, nil, pgmqclient.TraceSendEndData{MsgID: int64(i + 1)})
		want = append(want, "send "+q+" "+q)
		for _, op := range []pgmqclient.Operation{pgmqclient.OperationDelete, pgmqclient.OperationArchive} {
			c = tr.TraceSettleStart(ctx, nil, pgmqclient.TraceSettleStartData{Queue: q, Operation: op, MsgIDs: []int64{int64(i + 1)}})
			tr.TraceSettleEnd(c, nil, pgmqclient.TraceSettleEndData{})
			want = append(want, string(op)+" "+q+" "+q)
		}
	}
	var got []string
	for _, s := range spans.Ended() {
		dest := ""
		for _, a := range s.Attributes() {
			if a.Key == "messaging.destination.name" {
				dest = a.Value.AsString()
			}
		}
		got = append(got, s.Name()+" "+dest)
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans %q, want %q", got, want)
	}
}

// linked reports whether from links to to.
func linked(from, to sdktrace.ReadOnlySpan) bool {
	for _, l := range from.Links() {
		if l.SpanContext.SpanID() == to.SpanContext().SpanID() {
			return true
		}
	}
	return false
}
