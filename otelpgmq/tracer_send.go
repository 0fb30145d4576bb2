package otelpgmq

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// operationCreate is messaging.operation.name of create spans.
const operationCreate = "create"

// TraceSendStart starts the "send <queue>" span. Its context is the
// message's creation context and goes into the message's headers (the span
// is PRODUCER), unless the caller's headers carry a creation context of
// their own: then nothing is injected, and the span is CLIENT and links to
// the caller's context, as the conventions ask.
func (t *Tracer) TraceSendStart(ctx context.Context, c *pgmqclient.Client, data pgmqclient.TraceSendStartData) context.Context {
	start := t.now()
	srv := serverOf(c)
	st := t.startOptions(spanKey{data.Queue, string(pgmqclient.OperationSend), srv}, trace.SpanKindProducer, semconv.MessagingOperationTypeSend)
	own, link := t.callerContext(data.CallerHeaders)
	opts := make([]trace.SpanStartOption, 0, len(st.opts)+3)
	opts = append(append(opts, st.opts...), trace.WithTimestamp(start))
	if own {
		opts = append(opts, trace.WithSpanKind(trace.SpanKindClient)) // the later kind wins
		if link.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: link}))
		}
	}
	ctx, span := t.tracer.Start(ctx, st.name, opts...)
	if !own {
		t.propagator.Inject(ctx, data.Headers)
	}
	return withState(ctx, &opState{queue: data.Queue, op: pgmqclient.OperationSend, server: srv, start: start, span: span, st: st})
}

// TraceSendEnd ends the send span and records the send's metrics, with the
// same start and end times.
func (t *Tracer) TraceSendEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSendEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	end := t.now()
	t.finishSend(ctx, s, 1, end, data.Err)
	if data.Err == nil && s.span.IsRecording() {
		s.span.SetAttributes(msgID(data.MsgID))
	}
	endSpan(s.span, data.Err, trace.WithTimestamp(end))
}

// finishSend records sent.messages and operation.duration.
func (t *Tracer) finishSend(ctx context.Context, s *opState, n int, end time.Time, err error) {
	if err == nil && s.st != nil {
		st := t.keep(s.st)
		st.count.sent.Add(int64(n))
		t.inst.opDuration.Inst().Record(ctx, end.Sub(s.start).Seconds(), st.duration.rec...)
		return
	}
	et := errType(err)
	op := string(s.op)
	t.inst.attrs(setKey{queue: s.queue, opName: op, errType: et, server: s.server}).sent.Add(int64(n))
	t.inst.recordOperation(ctx, setKey{queue: s.queue, opName: op, opType: "send", errType: et, server: s.server}, end.Sub(s.start).Seconds())
}

// TraceSendBatchStart starts, unless turned off, a "create <queue>"
// PRODUCER span per message, whose context goes into that message's
// headers, then the "send_batch <queue>" span, linked to each. As in the
// conventions' example, the create spans are the send span's siblings
// (children of the caller's span, or roots): each message's trace then runs
// from its create span to its processing. A message whose caller's headers
// carry a creation context of their own gets no create span and nothing
// injected, and the send span links to that context. The send span is
// PRODUCER only when its own context goes into a message
// (WithoutCreateSpans), CLIENT otherwise.
func (t *Tracer) TraceSendBatchStart(ctx context.Context, c *pgmqclient.Client, data pgmqclient.TraceSendBatchStartData) context.Context {
	start := t.now()
	srv := serverOf(c)
	var own []bool // messages carrying the caller's creation context; nil for none
	var links []trace.Link
	for i, h := range data.CallerHeaders {
		o, link := t.callerContext(h)
		if !o {
			continue
		}
		if own == nil {
			own = make([]bool, len(data.Headers))
		}
		if i < len(own) {
			own[i] = true
		}
		if link.IsValid() {
			links = append(links, trace.Link{SpanContext: link})
		}
	}
	s := &opState{queue: data.Queue, op: pgmqclient.OperationSendBatch, server: srv, start: start, qty: data.Count}
	if t.cfg.createSpans {
		s.creates = make([]trace.Span, len(data.Headers))
		createAttrs := trace.WithAttributes(baseAttrs(data.Queue, semconv.MessagingOperationTypeCreate, operationCreate, srv)...)
		name := spanName(operationCreate, data.Queue)
		for i := range data.Headers {
			if i < len(own) && own[i] {
				continue
			}
			cctx, cs := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(start), createAttrs)
			s.creates[i] = cs
			t.propagator.Inject(cctx, &data.Headers[i])
			if sc := cs.SpanContext(); sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	kind := trace.SpanKindClient
	if !t.cfg.createSpans && countFalse(own, len(data.Headers)) > 0 {
		kind = trace.SpanKindProducer // its context is some message's creation context
	}
	attrs := append(baseAttrs(data.Queue, semconv.MessagingOperationTypeSend, string(pgmqclient.OperationSendBatch), srv),
		semconv.MessagingBatchMessageCount(data.Count))
	ctx, s.span = t.tracer.Start(ctx, spanName(string(pgmqclient.OperationSendBatch), data.Queue),
		trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...), trace.WithLinks(links...))
	if !t.cfg.createSpans {
		for i := range data.Headers {
			if i >= len(own) || !own[i] {
				t.propagator.Inject(ctx, &data.Headers[i])
			}
		}
	}
	return withState(ctx, s)
}

// countFalse returns how many of the first n messages have no context of
// their own (own may be nil: none has).
func countFalse(own []bool, n int) int {
	k := 0
	for i := range n {
		if i >= len(own) || !own[i] {
			k++
		}
	}
	return k
}

// TraceSendBatchEnd ends the batch's spans and records its metrics.
func (t *Tracer) TraceSendBatchEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSendBatchEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	end := t.now()
	t.finishSend(ctx, s, s.qty, end, data.Err)
	for i, c := range s.creates {
		if c == nil {
			continue
		}
		if data.Err == nil && i < len(data.MsgIDs) {
			c.SetAttributes(msgID(data.MsgIDs[i]))
		}
		endSpan(c, data.Err, trace.WithTimestamp(end))
	}
	endSpan(s.span, data.Err, trace.WithTimestamp(end))
}

// reservedKey reports whether the JSON string k (quotes included) starts
// with PGMQ's own prefix, x-pgmq-, in any case.
func reservedKey(k []byte) bool {
	const prefix = `"x-pgmq-`
	return len(k) >= len(prefix) && bytes.EqualFold(k[:len(prefix)], []byte(prefix))
}

// callerContext reports whether the caller's headers h keep the hook's
// context out of the message: they are not an object (the client then
// writes nothing into them), or they hold a key of the propagator (the
// caller propagates a creation context of its own, which the conventions
// say must not be touched). link is that context, when valid.
func (t *Tracer) callerContext(h json.RawMessage) (own bool, link trace.SpanContext) {
	if h == nil {
		return false, trace.SpanContext{}
	}
	if b := bytes.TrimLeft(h, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return true, trace.SpanContext{}
	}
	var fields []string // asked for only when a key other than PGMQ's own is there
	found := false
	if !scanObject(h, func(k, _ []byte, _ bool) bool {
		if reservedKey(k) {
			return true
		}
		if fields == nil {
			fields = t.propagator.Fields()
		}
		for _, f := range fields {
			if quotedEquals(k, f) {
				found = true
				return false
			}
		}
		return true
	}) && !found {
		return true, trace.SpanContext{} // malformed: the client leaves it as it is
	}
	if !found {
		return false, trace.SpanContext{}
	}
	return true, t.extract(h).span
}
