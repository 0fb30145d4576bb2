// Package otelpgmq traces and measures PGMQ messaging with OpenTelemetry,
// following the messaging semantic conventions
// (go.opentelemetry.io/otel/semconv/v1.43.0) with messaging.system "pgmq".
//
// A Tracer implements pgmqclient's tracing hooks; give it to the client:
//
//	tr := otelpgmq.NewTracer()
//	c := pgmqclient.New(pool, pgmqclient.WithTracer(tr))
//
// Then (span names are "{messaging.operation.name} {queue}"; every span and
// messaging metric carries server.address and server.port when the client's
// configuration names one server, see pgmqclient.Client.Server):
//
//   - Send makes a "send <queue>" PRODUCER span whose context goes into the
//     message's PGMQ headers as top-level keys (traceparent, tracestate,
//     and baggage when the propagator carries it). SendBatch makes a
//     "send_batch <queue>" CLIENT span and a "create <queue>" PRODUCER span
//     per message, whose context goes into that message; the send span
//     links to each (WithoutCreateSpans turns the create spans off: every
//     message then carries the send span's context and that span is
//     PRODUCER). A message whose caller's headers already carry a creation
//     context keeps it: no create span, nothing injected, and the send span
//     (then CLIENT for Send) links to it. PGMQ's own x-pgmq-* keys are never
//     written; on PGMQ before 1.5, which has no headers, nothing is written
//     and nothing fails.
//   - Read, ReadWithPoll and Pop make "read <queue>", "read_with_poll
//     <queue>" and "pop <queue>" CLIENT spans linked to each message's
//     creation context; receives that return nothing make no span unless
//     WithEmptyReceives is given.
//   - Delete, Archive and SetVisibilityTimeout make "delete <queue>",
//     "archive <queue>" and "set_vt <queue>" CLIENT spans.
//   - Tracer.Process runs the work on one message inside a
//     "process <queue>" CONSUMER span, counts the processor in otelmetrics'
//     orchestration.processor.active and records messaging.process.duration
//     in the span's context, so the histogram carries exemplars. The span
//     links to the message's creation context, or, with WithProcessParent,
//     is its child and links to it and to the caller's span.
//
// Send and settle spans and their messaging.client.operation.duration are
// one measurement: the same start and end times.
//
// Trace context and baggage are read from headers that any producer able
// to send to the queue writes, within limits (MaxHeadersSize,
// MaxTraceContextSize, MaxBaggageSize, MaxBaggageMembers); a value over its
// limit reads as absent. WithoutMessageBaggage drops the baggage messages
// carry.
//
// Metrics (units and attributes in docs/metrics.md):
// messaging.client.sent.messages, messaging.client.consumed.messages,
// messaging.client.operation.duration, messaging.process.duration,
// pgmq.message.wait.duration (enqueued_at to the first read, including any
// send delay; a wait that cannot be known is counted in
// pgmq.message.wait.skipped instead) and pgmq.message.redeliveries
// (messages read again: read_ct > 1, or > 0 for pop, which does not count its read). Metric attributes are messaging.system,
// messaging.destination.name, messaging.operation.name and .type and
// error.type: never a message id, which goes on spans only.
//
// Telemetry never blocks the application: spans and measurements are
// in-memory operations handed to the SDK, and instrument errors go to
// otel.Handle.
package otelpgmq
