package otelpgmq

import (
	"context"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// TraceSettleStart starts the "<operation> <queue>" settle span ("delete
// <queue>", "archive <queue>", "set_vt <queue>").
func (t *Tracer) TraceSettleStart(ctx context.Context, c *pgmqclient.Client, data pgmqclient.TraceSettleStartData) context.Context {
	start := t.now()
	srv := serverOf(c)
	st := t.startOptions(spanKey{data.Queue, string(data.Operation), srv}, trace.SpanKindClient, semconv.MessagingOperationTypeSettle)
	opts := make([]trace.SpanStartOption, 0, len(st.opts)+1)
	ctx, span := t.tracer.Start(ctx, st.name, append(append(opts, st.opts...), trace.WithTimestamp(start))...)
	if span.IsRecording() {
		if len(data.MsgIDs) == 1 {
			span.SetAttributes(msgID(data.MsgIDs[0]))
		} else {
			span.SetAttributes(semconv.MessagingBatchMessageCount(len(data.MsgIDs)))
		}
	}
	return withState(ctx, &opState{queue: data.Queue, op: data.Operation, server: srv, start: start, span: span, st: st})
}

// TraceSettleEnd ends the settle span and records its duration, with the
// same start and end times.
func (t *Tracer) TraceSettleEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSettleEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	end := t.now()
	seconds := end.Sub(s.start).Seconds()
	if data.Err == nil {
		t.inst.opDuration.Inst().Record(ctx, seconds, t.keep(s.st).duration.rec...)
	} else {
		t.inst.recordOperation(ctx, setKey{queue: s.queue, opName: string(s.op), opType: "settle", errType: errType(data.Err), server: s.server}, seconds)
	}
	endSpan(s.span, data.Err, trace.WithTimestamp(end))
}
