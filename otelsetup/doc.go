// Package otelsetup is the application side of pgmqotel: it builds the
// OpenTelemetry SDK's meter and tracer providers, their exporters and the
// propagator from the standard OTEL_* variables, so that a program
// configures its telemetry the way every OpenTelemetry SDK is configured.
// The instrumentation packages (otelmetrics, otelpgmq, pgmqclient) depend
// on the OpenTelemetry API only and work with any providers; this package
// is one choice of them, and the only one of this module that imports the
// SDK, exporters, gRPC and the Prometheus client.
//
//   - NewMeterProvider: OTLP (gRPC by default, or HTTP), Prometheus or
//     console metrics (OTEL_METRICS_EXPORTER), a cardinality limit that
//     fits 10,000 queues' depths, and the export health that otelmetrics'
//     sampler election uses. MetricsOptions hands what otelmetrics.New
//     needs to know about the provider on to it.
//   - NewTracerProvider: OTLP or console spans (OTEL_TRACES_EXPORTER, read
//     as OTEL_METRICS_EXPORTER is), batched by NewSpanBatcher's processor,
//     with the same resource as the metrics.
//   - NewPropagator: OTEL_PROPAGATORS.
//
// Configuration is loud: a value the SDK would ignore, misread or silently
// replace (an endpoint without a scheme, "5s" for milliseconds, an unknown
// exporter, a CA file that cannot be read, a client certificate without
// its key) fails NewMeterProvider or NewTracerProvider with an *EnvError
// naming the variable, or, where the specification says to warn, is
// reported once as an *EnvWarning through otel.Handle. Header values and
// key files never appear in a message.
//
// Export failures are explained: each is handed to otel.Handle as an
// *ExportError naming the endpoint, what went wrong (nothing listening,
// no answer in time, the Collector's certificate not trusted, a client
// certificate required) and the variables to check, once per distinct
// failure until an export succeeds again. Exports never block the
// application: a Collector that is down or slow costs the telemetry, not
// the program.
//
// # TLS to the Collector
//
// An https:// endpoint turns TLS on. OTEL_EXPORTER_OTLP_CERTIFICATE names
// the CA that signed the Collector's certificate (else the system's CAs
// are trusted); OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and
// OTEL_EXPORTER_OTLP_CLIENT_KEY give this process's certificate to a
// Collector that requires one (mutual TLS). Each has a _METRICS_ and a
// _TRACES_ form that wins for its signal. The files are read once, when
// the provider is built: after changing them, build new providers (restart
// the process). A Collector whose certificate is replaced by one the
// configured CA trusts is exported to again without a restart, at the
// exporter's next connection attempt.
//
// # Shutting down
//
// Shut the providers down before the process exits, within a deadline,
// or the last metrics and the spans still queued are lost: the tracer
// provider once the work that makes spans is done, the meter provider
// before otelmetrics' Metrics.Close (its final export still observes those
// instruments). An export that does not finish by the deadline is
// reported as such, naming the endpoint.
package otelsetup
