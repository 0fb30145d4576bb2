package otelpgmq

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// operationProcess is messaging.operation.name of process spans and of
// messaging.process.duration.
const operationProcess = "process"

// Process runs fn on one message received from queue, and accounts for it
// in one place:
//
//   - kind's processor count (otelmetrics' orchestration.processor.active)
//     is up while fn runs; a nil kind counts nothing;
//   - fn runs inside a "process <queue>" CONSUMER span carrying the message
//     id and read count, and the server the message was read from
//     (msg.Server). By default its parent is ctx's span and it links to the
//     message's creation context; with WithProcessParent the creation
//     context is its parent, and it links to that context and to ctx's span
//     (when ctx has one), as the conventions ask. The baggage the message
//     carries is put in fn's context, unless WithoutMessageBaggage;
//   - messaging.process.duration is recorded in the span's context, so a
//     sampled span becomes the histogram's exemplar.
//
// fn's error is returned as is and recorded on the span and as error.type.
// A panic in fn is recorded (error.type "panic") and goes on up.
func (t *Tracer) Process(ctx context.Context, queue string, kind *otelmetrics.ProcessorKind, msg pgmqclient.Message, fn func(ctx context.Context) error) (err error) {
	start := t.now()
	created := t.extract(msg.Headers)
	srv, _ := msg.Server()
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.MessagingSystemKey.String(System),
		semconv.MessagingDestinationName(queue),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName(operationProcess),
		msgID(msg.ID),
		attribute.Int(AttrReadCount, int(msg.ReadCount)),
	)
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(start),
		trace.WithAttributes(appendServer(attrs, srv)...),
	}
	if created.span.IsValid() {
		links := []trace.Link{{SpanContext: created.span}}
		if t.cfg.processParent {
			if ambient := trace.SpanContextFromContext(ctx); ambient.IsValid() {
				links = append(links, trace.Link{SpanContext: ambient})
			}
			ctx = trace.ContextWithRemoteSpanContext(ctx, created.span)
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	if created.baggage.Len() > 0 {
		ctx = baggage.ContextWithBaggage(ctx, created.baggage)
	}
	ctx, span := t.tracer.Start(ctx, spanName(operationProcess, queue), opts...)

	var run otelmetrics.ProcessorRun
	if kind != nil {
		run = kind.Start()
	}
	panicked := true
	defer func() {
		run.Finish()
		end := t.now()
		et := errType(err)
		if panicked {
			// Not recovered: the panic goes on up once this returns.
			et = "panic"
			span.SetAttributes(semconv.ErrorTypeKey.String(et))
			span.SetStatus(codes.Error, "panic")
		} else if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(et))
			span.SetStatus(codes.Error, err.Error())
		}
		t.inst.procDuration.Inst().Record(ctx, end.Sub(start).Seconds(),
			t.inst.attrs(setKey{queue: queue, opName: operationProcess, errType: et, server: srv}).rec...)
		span.End(trace.WithTimestamp(end))
	}()
	err = fn(ctx)
	panicked = false
	return err
}
