package otelsetup

import (
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Options come in one idiom: a value of an interface with an unexported
// method, made by a With function. Each provider has its own option type;
// an Option applies to both, so that metrics and traces describe the same
// process. Options given in code take precedence over the environment, and
// a nil option is ignored.

// MeterProviderOption configures NewMeterProvider.
type MeterProviderOption interface {
	applyMeter(*meterConfig)
}

// TracerProviderOption configures NewTracerProvider.
type TracerProviderOption interface {
	applyTracer(*tracerConfig)
}

// Option configures NewMeterProvider and NewTracerProvider alike.
type Option interface {
	MeterProviderOption
	TracerProviderOption
}

type meterOptionFunc func(*meterConfig)

func (f meterOptionFunc) applyMeter(c *meterConfig) { f(c) }

type tracerOptionFunc func(*tracerConfig)

func (f tracerOptionFunc) applyTracer(c *tracerConfig) { f(c) }

// sharedOption sets a field both configurations have.
type sharedOption func(*sharedConfig)

func (f sharedOption) applyMeter(c *meterConfig)   { f(&c.sharedConfig) }
func (f sharedOption) applyTracer(c *tracerConfig) { f(&c.sharedConfig) }

// sharedConfig is what both providers are configured with.
type sharedConfig struct {
	resource *resource.Resource
}

type meterConfig struct {
	sharedConfig
	grpcOpts []otlpmetricgrpc.Option
	httpOpts []otlpmetrichttp.Option
	readers  []sdkmetric.Reader
	interval time.Duration
	views    []sdkmetric.View
	wrap     []func(sdkmetric.Exporter) sdkmetric.Exporter
	limit    *int // cardinality limit; nil: the default (see cardinality.go)
	// periodicReaders counts the periodic readers built here.
	periodicReaders int
}

type tracerConfig struct {
	sharedConfig
	exporter   sdktrace.SpanExporter
	processors []sdktrace.SpanProcessor
}

func newMeterConfig(opts []MeterProviderOption) meterConfig {
	var c meterConfig
	for _, o := range opts {
		if o != nil {
			o.applyMeter(&c)
		}
	}
	return c
}

func newTracerConfig(opts []TracerProviderOption) tracerConfig {
	var c tracerConfig
	for _, o := range opts {
		if o != nil {
			o.applyTracer(&c)
		}
	}
	return c
}

// WithResource merges r over the resource detected from the environment
// (its attributes win on conflict), for the provider it is given to; give
// the same one to both providers. A nil resource is ignored.
func WithResource(r *resource.Resource) Option {
	return sharedOption(func(c *sharedConfig) {
		if r != nil {
			c.resource = r
		}
	})
}

// WithOTLPMetricGRPCOptions configures the OTLP gRPC metric exporter. The
// options are applied after the environment, so they win over it, and
// they pin the protocol to gRPC whatever OTEL_EXPORTER_OTLP_PROTOCOL says.
func WithOTLPMetricGRPCOptions(o ...otlpmetricgrpc.Option) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) { c.grpcOpts = append(c.grpcOpts, o...) })
}

// WithOTLPMetricHTTPOptions configures the OTLP HTTP/protobuf metric
// exporter. The options are applied after the environment, so they win
// over it, and they pin the protocol to http/protobuf whatever
// OTEL_EXPORTER_OTLP_PROTOCOL says.
func WithOTLPMetricHTTPOptions(o ...otlpmetrichttp.Option) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) { c.httpOpts = append(c.httpOpts, o...) })
}

// WithReader adds a metric reader next to the exporters of
// OTEL_METRICS_EXPORTER, for example a ManualReader. The MeterProvider
// shuts it down; when OTEL_SDK_DISABLED=true it is never registered. A nil
// reader is ignored.
func WithReader(r sdkmetric.Reader) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) {
		if r != nil {
			c.readers = append(c.readers, r)
		}
	})
}

// WithMetricExportInterval sets the time between two periodic exports,
// overriding OTEL_METRIC_EXPORT_INTERVAL. A non-positive d leaves the
// environment (or the SDK default of 60s) in effect.
func WithMetricExportInterval(d time.Duration) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) { c.interval = d })
}

// WithOTLPMetricExporterWrapper wraps the OTLP metric exporter before the
// periodic reader gets it, for example to count or time exports. Wrappers
// apply in the order given, the last outermost; a nil wrapper, or one
// returning nil, is ignored. Only the OTLP exporter is wrapped (not
// Prometheus or console ones). A wrapper sees every export and its error
// (an *ExportError), also those not handed to otel.Handle again.
func WithOTLPMetricExporterWrapper(w func(sdkmetric.Exporter) sdkmetric.Exporter) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) {
		if w != nil {
			c.wrap = append(c.wrap, w)
		}
	})
}

// WithViews adds views to the MeterProvider, for example to rename an
// instrument or drop an attribute.
func WithViews(v ...sdkmetric.View) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) { c.views = append(c.views, v...) })
}

// WithCardinalityLimit sets the most points an instrument keeps per
// collection (the SDK's cardinality limit); past it the SDK folds the rest
// into one otel.metric.overflow=true point. Zero or negative means no
// limit. The default is DefaultCardinalityLimit (10,000 queues' depths),
// or OTEL_GO_X_CARDINALITY_LIMIT when set; the SDK's own default is 2,000,
// which pgmq.queue.depth passes at 1,000 queues. MetricsOptions hands the
// limit in effect on to otelmetrics.
func WithCardinalityLimit(n int) MeterProviderOption {
	return meterOptionFunc(func(c *meterConfig) { c.limit = &n })
}

// WithSpanExporter replaces the exporters chosen by OTEL_TRACES_EXPORTER.
// A nil exporter is ignored.
func WithSpanExporter(e sdktrace.SpanExporter) TracerProviderOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if e != nil {
			c.exporter = e
		}
	})
}

// WithSpanProcessor adds a span processor next to the exporters' batchers,
// for example a tracetest.SpanRecorder. A nil processor is ignored.
func WithSpanProcessor(p sdktrace.SpanProcessor) TracerProviderOption {
	return tracerOptionFunc(func(c *tracerConfig) {
		if p != nil {
			c.processors = append(c.processors, p)
		}
	})
}
