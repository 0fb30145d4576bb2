package otelpgmq

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// TraceReceiveStart notes the start; the "<operation> <queue>" span ("read
// <queue>", "read_with_poll <queue>", "pop <queue>") is made at the end,
// once it is known whether any message came.
func (t *Tracer) TraceReceiveStart(ctx context.Context, c *pgmqclient.Client, data pgmqclient.TraceReceiveStartData) context.Context {
	return withState(ctx, &opState{queue: data.Queue, op: data.Operation, server: serverOf(c), start: t.now(), parent: ctx, qty: data.Qty,
		vt: data.VisibilityTimeout})
}

// TraceReceiveEnd makes the receive span, linked to each message's creation
// context, and records the receive's metrics, the messages' wait and their
// redeliveries.
func (t *Tracer) TraceReceiveEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceReceiveEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	end := t.now()
	op := string(s.op)
	st := t.startOptions(spanKey{s.queue, op, s.server}, trace.SpanKindClient, semconv.MessagingOperationTypeReceive)
	if data.Err == nil || len(data.Messages) > 0 {
		st = t.keep(st) // the queue exists
	}
	duration, count := st.duration, st.count
	if data.Err != nil {
		et := errType(data.Err)
		duration = t.inst.attrs(setKey{queue: s.queue, opName: op, opType: "receive", errType: et, server: s.server})
		count = t.inst.attrs(setKey{queue: s.queue, opName: op, errType: et, server: s.server})
	}
	t.inst.opDuration.Inst().Record(ctx, end.Sub(s.start).Seconds(), duration.rec...)
	if n := len(data.Messages); n > 0 {
		count.consumed.Add(int64(n))
		t.measureMessages(ctx, s, st.queue, data.Messages, end)
	}
	if len(data.Messages) == 0 && data.Err == nil && !t.cfg.emptyReceives {
		return
	}
	opts := make([]trace.SpanStartOption, 0, len(st.opts)+1+len(data.Messages))
	opts = append(append(opts, st.opts...), trace.WithTimestamp(s.start))
	var firstID attribute.KeyValue // the first message's id, made once for its link and the span
	if parent := trace.SpanContextFromContext(s.parent); parent.IsSampled() || !parent.IsValid() {
		// Links are given at the start; skip the work under an unsampled parent.
		for i, m := range data.Messages {
			if c := t.extract(m.Headers); c.span.IsValid() {
				id := msgID(m.ID)
				if i == 0 {
					firstID = id
				}
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: c.span, Attributes: []attribute.KeyValue{id}}))
			}
		}
	}
	_, span := t.tracer.Start(s.parent, st.name, opts...)
	if span.IsRecording() {
		if len(data.Messages) == 1 {
			m := data.Messages[0]
			if !firstID.Valid() {
				firstID = msgID(m.ID)
			}
			span.SetAttributes(firstID, attribute.Int(AttrReadCount, int(m.ReadCount)))
		} else if s.qty > 1 {
			span.SetAttributes(semconv.MessagingBatchMessageCount(len(data.Messages)))
		}
	}
	endSpan(span, data.Err, trace.WithTimestamp(end))
}

// measureMessages records pgmq.message.wait.duration for messages read for
// the first time and pgmq.message.redeliveries for the others.
//
// The read time comes from the server where it can: last_read_at (PGMQ
// 1.11 on), else vt minus the visibility timeout (read and read_with_poll
// set vt = clock_timestamp() + vt). Only pop, which sets neither, uses this
// process's clock. A negative wait (clocks apart) is left out and counted in
// pgmq.message.wait.skipped (reason clock_skew).
func (t *Tracer) measureMessages(ctx context.Context, s *opState, attrs *measureOpts, msgs []pgmqclient.Message, end time.Time) {
	// read and read_with_poll count the read they make; pop does not, so a
	// popped message that was read before has read_ct 1 already.
	firstRead := int32(1)
	if s.op == pgmqclient.OperationPop {
		firstRead = 0
	}
	var again int64
	for i := range msgs {
		m := &msgs[i]
		if m.ReadCount > firstRead {
			again++
			continue
		}
		read := end
		switch {
		case m.LastReadAt != nil:
			read = *m.LastReadAt
		case s.op != pgmqclient.OperationPop:
			read = m.VisibleAt.Add(-s.vt)
		}
		if w := read.Sub(m.EnqueuedAt); w >= 0 {
			t.inst.wait.Record(ctx, w.Seconds(), attrs.rec...)
		} else {
			// The read time came from this process's clock (Pop), which is
			// behind the server's: the wait is unknown, not negative.
			t.inst.waitSkipped.Add(ctx, 1, t.inst.skipAttrs(s.queue).add...)
		}
	}
	if again > 0 {
		attrs.redelivered.Add(again)
	}
}
