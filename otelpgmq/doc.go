// Package otelpgmq traces and measures PGMQ messaging with OpenTelemetry,
// following the messaging semantic conventions
// (go.opentelemetry.io/otel/semconv/v1.43.0) with messaging.system "pgmq".
//
// A Tracer implements pgmqclient's tracing hooks; give it to the client:
//
//	tr := otelpgmq.NewTracer()
//	c := pgmqclient.New(pool, pgmqclient.WithTracer(tr))
//
// Then:
//
//   - Send and SendBatch make a "send <queue>" PRODUCER span (and, for a
//     batch, a "create <queue>" span per message; WithoutCreateSpans turns
//     those off) and write the creation context into each message's PGMQ
//     headers as top-level keys (traceparent, tracestate, and baggage when
//     the propagator carries it). Keys the caller set win; PGMQ's own
//     x-pgmq-* keys are never written; on PGMQ before 1.5, which has no
//     headers, nothing is written and nothing fails.
//   - Read, ReadWithPoll and Pop make a "receive <queue>" CLIENT span linked
//     to each message's creation context; receives that return nothing make
//     no span unless WithEmptyReceives is given.
//   - Delete, Archive and SetVisibilityTimeout make "delete <queue>",
//     "archive <queue>" and "set_vt <queue>" CLIENT spans.
//   - Tracer.Process runs the work on one message inside a
//     "process <queue>" CONSUMER span, counts the processor in otelmetrics'
//     orchestration.processor.active and records messaging.process.duration
//     in the span's context, so the histogram carries exemplars. The span
//     links to the message's creation context, or, with WithProcessParent,
//     is its child.
//
// Metrics (units and attributes in the README's table):
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
