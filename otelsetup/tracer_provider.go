package otelsetup

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/otelsetup/internal/spanbatch"
)

// TracerProvider is the SDK's TracerProvider built by NewTracerProvider.
// Its Shutdown and ForceFlush say which export did not finish, and where
// to. Shut it down before the process exits, or the spans still queued are
// lost.
type TracerProvider struct {
	*sdktrace.TracerProvider

	otlp     *otlpTarget // nil without an OTLP exporter
	disabled bool
}

// NewTracerProvider builds the TracerProvider to run beside the
// MeterProvider of NewMeterProvider, from the same OTEL_* variables, read
// the same way, and with the same resource (service.name,
// service.instance.id). Spans are exported in batches by a background
// goroutine with a bounded queue per exporter (see NewSpanBatcher): a slow
// or absent collector drops spans, it never blocks the application. It
// does not connect.
//
//   - OTEL_TRACES_EXPORTER: a comma-separated list (any case, spaces
//     allowed) of "otlp" (the default), "console" (standard output) and
//     "none"; an unknown name fails with an *EnvError listing the valid
//     ones, as for OTEL_METRICS_EXPORTER.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "grpc" (this module's default, as for metrics) or "http/protobuf".
//   - OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _INSECURE, _TIMEOUT,
//     _COMPRESSION, _CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY: read by
//     the OTLP exporter, checked first as for metrics (see
//     NewMeterProvider).
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: read by the SDK
//     (default parentbased_always_on).
//   - OTEL_BSP_SCHEDULE_DELAY, _EXPORT_TIMEOUT (milliseconds),
//     _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE: the batcher's, as for the
//     SDK's BatchSpanProcessor (see NewSpanBatcher).
//   - OTEL_SDK_DISABLED=true: no exporter; spans are not recorded (the
//     sampler drops them all) but the context still propagates.
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource.
//
// A failed OTLP export goes to otel.Handle as an *ExportError, once per
// distinct failure, as for metrics. For OTEL_PROPAGATORS, see
// NewPropagator.
func NewTracerProvider(ctx context.Context, opts ...TracerProviderOption) (*TracerProvider, error) {
	cfg := newTracerConfig(opts)
	if sdkDisabled() {
		return &TracerProvider{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())), disabled: true}, nil
	}
	exporters, err := readExporters(envTracesExporter, ExporterOTLP, ExporterConsole, ExporterNone)
	if err != nil {
		return nil, err
	}
	if cfg.exporter != nil {
		exporters = exporterList{} // replaced
	}
	var protocol string
	if exporters.has(ExporterOTLP) {
		if protocol, err = otlpProtocol(envTracesProtocol); err != nil {
			return nil, err
		}
	}
	if err := checkTracesEnv(exporters); err != nil {
		return nil, err
	}
	res, err := newResource(ctx, cfg.resource)
	if err != nil {
		return nil, err
	}
	// Read before any exporter exists, which would need a Shutdown.
	batch, err := spanBatcherConfig()
	if err != nil {
		return nil, err
	}

	tp := &TracerProvider{}
	var batchers []*spanbatch.Processor
	add := func(exp sdktrace.SpanExporter, handle func(error)) {
		c := batch
		c.HandleError = handle
		batchers = append(batchers, spanbatch.New(exp, c))
	}
	if cfg.exporter != nil {
		add(cfg.exporter, nil)
	}
	if exporters.has(ExporterOTLP) {
		exp, err := newOTLPSpanExporter(ctx, protocol)
		if err != nil {
			return nil, err
		}
		tp.otlp = newOTLPTarget("TRACES", protocol, false)
		target := tp.otlp
		add(&explainingSpanExporter{SpanExporter: exp, target: target}, func(err error) {
			if target.reporter.first(err) {
				otel.Handle(err)
			}
		})
	}
	if exporters.has(ExporterConsole) {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
		if err != nil {
			for _, b := range batchers {
				_ = b.Shutdown(ctx)
			}
			return nil, fmt.Errorf("otelsetup: console span exporter: %w", err)
		}
		add(exp, nil)
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, b := range batchers {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(b))
	}
	for _, p := range cfg.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	tp.TracerProvider = sdktrace.NewTracerProvider(tpOpts...)
	return tp, nil
}

// Disabled reports whether OTEL_SDK_DISABLED made this a TracerProvider
// that records nothing.
func (p *TracerProvider) Disabled() bool { return p.disabled }

// ForceFlush exports the spans ended so far, within ctx.
func (p *TracerProvider) ForceFlush(ctx context.Context) error {
	if err := p.TracerProvider.ForceFlush(ctx); err != nil {
		return fmt.Errorf("otelsetup: flush spans: %w", p.otlp.unfinished("export", err))
	}
	return nil
}

// Shutdown exports the spans still queued and stops the exporters. It
// returns when ctx is done at the latest: give it a deadline. Spans ended
// afterwards are dropped. Only the first call does anything.
func (p *TracerProvider) Shutdown(ctx context.Context) error {
	if err := p.TracerProvider.Shutdown(ctx); err != nil {
		return fmt.Errorf("otelsetup: shut down tracer provider: %w", p.otlp.unfinished("final export", err))
	}
	return nil
}

// newOTLPSpanExporter builds the OTLP span exporter of protocol; the SDK
// reads its OTEL_EXPORTER_OTLP_* variables here. It does not connect.
func newOTLPSpanExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	if protocol == ProtocolHTTPProtobuf {
		exp, err = otlptracehttp.New(ctx)
	} else {
		exp, err = otlptracegrpc.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otelsetup: create OTLP %s span exporter: %w", protocol, err)
	}
	return exp, nil
}

// explainingSpanExporter turns the errors of the OTLP span exporter it
// wraps into *ExportError.
type explainingSpanExporter struct {
	sdktrace.SpanExporter
	target *otlpTarget
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *explainingSpanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		e.target.reporter.succeeded()
		return nil
	}
	return e.target.explain(err)
}
