package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/internal/spanbatch"
)

// Variables NewTracerProvider reads itself; autoexport, autoprop and the
// SDK read the others. (This file depends on setup.go only for the
// resource, so that traces and metrics describe the same process.)
const (
	envTracesExporter    = "OTEL_TRACES_EXPORTER"
	envTracesProtocol    = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envTracesAnyProtocol = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesSDKDisabled = "OTEL_SDK_DISABLED"
)

// TracerProviderOption configures NewTracerProvider. A nil one is ignored.
type TracerProviderOption interface {
	applyTracer(*tracerConfig)
}

type tracerOptionFunc func(*tracerConfig)

func (f tracerOptionFunc) applyTracer(c *tracerConfig) { f(c) }

type tracerConfig struct {
	exporter   sdktrace.SpanExporter
	resource   *resource.Resource
	processors []sdktrace.SpanProcessor
}

// WithSpanExporter replaces the exporter chosen by the environment. A nil
// exporter is ignored.
func WithSpanExporter(e sdktrace.SpanExporter) TracerProviderOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if e != nil {
			c.exporter = e
		}
	})
}

// WithSpanProcessor adds a span processor next to the exporter's batcher,
// for example a tracetest.SpanRecorder. A nil processor is ignored.
func WithSpanProcessor(p sdktrace.SpanProcessor) TracerProviderOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if p != nil {
			c.processors = append(c.processors, p)
		}
	})
}

// WithTracerResource merges r over the resource detected from the
// environment, as WithResource does for NewMeterProvider. A nil resource is
// ignored.
func WithTracerResource(r *resource.Resource) TracerProviderOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if r != nil {
			c.resource = r
		}
	})
}

// NewTracerProvider builds the TracerProvider to run beside the
// MeterProvider of NewMeterProvider, from the same OTEL_* variables and
// with the same resource (service.name, service.instance.id). Spans are
// exported in batches by a background goroutine with a bounded queue: a slow
// or absent collector drops spans, it never blocks the application. It does
// not connect. Shut it down before the process exits.
//
//   - OTEL_TRACES_EXPORTER (autoexport): "otlp" (default), "console" or
//     "none".
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: "grpc" (this module's default,
//     as for metrics) or "http/protobuf". When neither is set, the OTLP
//     exporter speaks gRPC (autoexport's own default would be HTTP).
//   - OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _INSECURE, _TIMEOUT,
//     _COMPRESSION, _CERTIFICATE...: read by the OTLP exporter.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: read by the SDK
//     (default parentbased_always_on).
//   - OTEL_BSP_SCHEDULE_DELAY, _EXPORT_TIMEOUT (milliseconds),
//     _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE: the batcher's, as for the
//     SDK's BatchSpanProcessor (see NewSpanBatcher).
//   - OTEL_SDK_DISABLED=true: no exporter; spans are not recorded (the
//     sampler drops them all) but the context still propagates.
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource.
//
// For OTEL_PROPAGATORS, see NewPropagator.
func NewTracerProvider(ctx context.Context, opts ...TracerProviderOption) (*sdktrace.TracerProvider, error) {
	var cfg tracerConfig
	for _, o := range opts {
		if o != nil {
			o.applyTracer(&cfg)
		}
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(envTracesSDKDisabled)), "true") {
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())), nil
	}
	res, err := newResource(ctx, cfg.resource)
	if err != nil {
		return nil, err
	}
	// Read before the exporter exists, which would need a Shutdown.
	batch, err := spanBatcherConfig()
	if err != nil {
		return nil, err
	}
	exp := cfg.exporter
	if exp == nil {
		if exp, err = newSpanExporter(ctx); err != nil {
			return nil, err
		}
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if !autoexport.IsNoneSpanExporter(exp) {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(spanbatch.New(exp, batch)))
	}
	for _, p := range cfg.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	return sdktrace.NewTracerProvider(tpOpts...), nil
}

// NewSpanBatcher returns the span processor NewTracerProvider exports
// through: spans are exported in batches by a background goroutine, with
// the SDK BatchSpanProcessor's settings and defaults, read from the same
// variables (OTEL_BSP_SCHEDULE_DELAY 5000 ms, OTEL_BSP_EXPORT_TIMEOUT
// 30000 ms, OTEL_BSP_MAX_QUEUE_SIZE 2048, OTEL_BSP_MAX_EXPORT_BATCH_SIZE
// 512; a value that is not a positive integer is an *EnvError). Unlike the
// SDK's, it does not wake its goroutine for every span that ends, only when
// a batch is full or the delay has passed, which takes most of a sampled
// span's cost off the instrumented call (BENCHMARKS.md, bar 6). A full
// queue drops spans and reports how many through otel.Handle. Use it with
// a TracerProvider of your own: sdktrace.WithSpanProcessor(batcher).
func NewSpanBatcher(exp sdktrace.SpanExporter) (sdktrace.SpanProcessor, error) {
	if exp == nil {
		return nil, errors.New("otelmetrics: NewSpanBatcher: nil exporter")
	}
	cfg, err := spanBatcherConfig()
	if err != nil {
		return nil, err
	}
	return spanbatch.New(exp, cfg), nil
}

// spanBatcherConfig reads OTEL_BSP_*.
func spanBatcherConfig() (spanbatch.Config, error) {
	var cfg spanbatch.Config
	for _, v := range []struct {
		name string
		def  int
		set  func(int)
		ms   bool
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", 5000, func(n int) { cfg.ScheduleDelay = time.Duration(n) * time.Millisecond }, true},
		{"OTEL_BSP_EXPORT_TIMEOUT", 30000, func(n int) { cfg.ExportTimeout = time.Duration(n) * time.Millisecond }, true},
		{"OTEL_BSP_MAX_QUEUE_SIZE", spanbatch.DefaultMaxQueueSize, func(n int) { cfg.MaxQueueSize = n }, false},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", spanbatch.DefaultMaxExportBatchSize, func(n int) { cfg.MaxExportBatchSize = n }, false},
	} {
		raw, set := lookup(v.name)
		if !set {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		limit := math.MaxInt32
		if v.ms {
			limit = int(math.MaxInt64 / int64(time.Millisecond))
		}
		if err != nil || n <= 0 || n > limit {
			unit := "a positive whole number"
			if v.ms {
				unit += " of milliseconds, no unit"
			}
			return cfg, &EnvError{Name: v.name, Value: raw, Supported: unit, Instead: strconv.Itoa(v.def)}
		}
		v.set(n)
	}
	return cfg, nil
}

// newSpanExporter asks autoexport for the exporter, except that an OTLP
// exporter with no protocol set speaks gRPC, this module's default.
func newSpanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	name := strings.TrimSpace(os.Getenv(envTracesExporter))
	if name == "" || name == "otlp" {
		// As for metrics: the SDK reads an endpoint without a scheme as
		// something else and exports elsewhere, without a word.
		for _, v := range []string{envEndpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
			if err := checkEndpoint(v); err != nil {
				return nil, err
			}
		}
	}
	if (name == "" || name == "otlp") && os.Getenv(envTracesProtocol) == "" && os.Getenv(envTracesAnyProtocol) == "" {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otelmetrics: create OTLP gRPC span exporter: %w", err)
		}
		return exp, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: span exporter from %s=%q: %w", envTracesExporter, name, err)
	}
	return exp, nil
}

// NewPropagator returns the propagator named by OTEL_PROPAGATORS
// (autoprop: tracecontext, baggage, b3, b3multi, jaeger, xray, ottrace,
// none, comma-separated); unset, W3C trace context and baggage. An unknown
// name is an error here rather than a silent fallback. Install it with
// otel.SetTextMapPropagator; otelpgmq uses the global one by default.
func NewPropagator() (propagation.TextMapPropagator, error) {
	v := os.Getenv("OTEL_PROPAGATORS")
	if strings.TrimSpace(v) == "" {
		return autoprop.NewTextMapPropagator(), nil
	}
	names := strings.Split(v, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	p, err := autoprop.TextMapPropagator(names...)
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: OTEL_PROPAGATORS=%q: %w", v, err)
	}
	return p, nil
}
