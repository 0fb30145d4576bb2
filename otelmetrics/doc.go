// Package otelmetrics makes an orchestrator built on PGMQ observable with
// OpenTelemetry. It reports three numbers an orchestrator is steered by:
//
//   - active processors: orchestration.processor.active, an asynchronous
//     UpDownCounter fed by lock-free per-kind counters that the application
//     can also read in-process (ActiveProcessors, Snapshot);
//   - connection pool utilization: the semantic conventions'
//     db.client.connection.* instruments sampled from pgxpool.Stat at
//     collection time, plus pgxpool.connection.utilization (used / max),
//     and db.client.connection.wait_time, the time each acquire took,
//     when the pool's configuration holds a PoolTracer;
//   - queue depth: pgmq.queue.depth by visibility state and by how it was
//     obtained (pgmq.depth.method: count or estimate), the age of the
//     oldest message and the messages ever sent, sampled from PGMQ at a
//     cost that grows neither with the backlog nor faster than the number
//     of queues.
//
// New registers the instruments on a MeterProvider, the global one unless
// WithMeterProvider gives another. The package depends on the
// OpenTelemetry API only: the application chooses the SDK and exporters.
// Package otelsetup builds providers from the standard OTEL_* variables,
// and its MetricsOptions tell New what it cannot read from a provider.
// Package otelpgmq traces messages across the queue; its Process also
// drives the processor count.
//
// Telemetry never holds up the application: processor accounting is two
// atomic additions, pool sampling reads memory, and queue sampling runs on a
// dedicated connection under a timeout, throttled, and (by default) on only
// one replica at a time, elected through a lease row in PostgreSQL that the
// leader renews at every sample (see WithSamplerElection and ElectionDDL);
// it works directly, behind PgBouncer in session or transaction mode, and
// stays out of the way on a hot standby. When a sample fails its points are
// left out rather than invented, the failure is counted in
// pgmq.sampler.errors, and the error goes to otel.Handle once per distinct
// failure (operation and error type).
package otelmetrics
