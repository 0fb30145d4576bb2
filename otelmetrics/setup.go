package otelmetrics

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	// The SDK's resource detectors use this version; the same one keeps
	// merged resources free of schema URL conflicts.
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Variables read by NewMeterProvider itself. Everything else is read by the
// SDK (or autoexport) when the exporter and the reader are built, after
// checkEnv has checked it.
const (
	envSDKDisabled     = "OTEL_SDK_DISABLED"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envMetricsProtocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
)

// OTLP transport protocols, spelled as in OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// ErrConflictingExporterOptions is returned by NewMeterProvider when both
// WithExporterOptions and WithHTTPExporterOptions are given: each pins a
// different protocol.
var ErrConflictingExporterOptions = errors.New("otelmetrics: both gRPC and HTTP exporter options given")

// ProviderOption configures NewMeterProvider. A nil ProviderOption is
// ignored. Options given in code take precedence over the environment.
type ProviderOption interface {
	applyProvider(*providerConfig)
}

type providerOptionFunc func(*providerConfig)

func (f providerOptionFunc) applyProvider(c *providerConfig) { f(c) }

type providerConfig struct {
	grpcOpts []otlpmetricgrpc.Option
	httpOpts []otlpmetrichttp.Option
	readers  []sdkmetric.Reader
	resource *resource.Resource
	interval time.Duration
	views    []sdkmetric.View
	wrap     []func(sdkmetric.Exporter) sdkmetric.Exporter
	// periodicReaders counts the periodic readers built here.
	periodicReaders int
	limit           *int // cardinality limit; nil: the default (see cardinality.go)
}

// WithExporterOptions configures the OTLP gRPC exporter. The options are
// applied after the environment, so they win over it, and they pin the
// protocol to gRPC whatever OTEL_EXPORTER_OTLP_PROTOCOL says.
func WithExporterOptions(o ...otlpmetricgrpc.Option) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) { c.grpcOpts = append(c.grpcOpts, o...) })
}

// WithHTTPExporterOptions configures the OTLP HTTP/protobuf exporter. The
// options are applied after the environment, so they win over it, and they
// pin the protocol to http/protobuf whatever OTEL_EXPORTER_OTLP_PROTOCOL says.
func WithHTTPExporterOptions(o ...otlpmetrichttp.Option) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) { c.httpOpts = append(c.httpOpts, o...) })
}

// WithReader adds a reader next to the OTLP one, for example a Prometheus
// exporter or a ManualReader. The Provider shuts it down; when
// OTEL_SDK_DISABLED=true it is never registered. A nil reader is ignored.
func WithReader(r sdkmetric.Reader) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) {
		if r != nil {
			c.readers = append(c.readers, r)
		}
	})
}

// WithResource merges r over the resource detected from the environment:
// its attributes win on conflict. A nil resource is ignored.
func WithResource(r *resource.Resource) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) {
		if r != nil {
			c.resource = r
		}
	})
}

// WithExportInterval sets the time between two OTLP exports, overriding
// OTEL_METRIC_EXPORT_INTERVAL. A non-positive d leaves the environment (or
// the SDK default of 60s) in effect.
func WithExportInterval(d time.Duration) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) { c.interval = d })
}

// WithOTLPExporterWrapper wraps the OTLP exporter before the periodic
// reader gets it, for example to count or time exports. Wrappers apply in
// the order given, the last outermost; a nil wrapper, or one returning
// nil, is ignored. Only the OTLP exporter is wrapped (not Prometheus or
// console ones).
func WithOTLPExporterWrapper(w func(sdkmetric.Exporter) sdkmetric.Exporter) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) {
		if w != nil {
			c.wrap = append(c.wrap, w)
		}
	})
}

// WithViews adds views to the MeterProvider, for example to rename an
// instrument or drop an attribute.
func WithViews(v ...sdkmetric.View) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) { c.views = append(c.views, v...) })
}

// WithCardinalityLimit sets the most points an instrument keeps per
// collection (the SDK's cardinality limit); past it the SDK folds the rest
// into one otel.metric.overflow=true point. Zero or negative means no
// limit. The default is DefaultCardinalityLimit (10,000 queues' depths),
// or OTEL_GO_X_CARDINALITY_LIMIT when set; the SDK's own default is 2,000,
// which pgmq.queue.depth passes at 1,000 queues.
func WithCardinalityLimit(n int) ProviderOption {
	return providerOptionFunc(func(c *providerConfig) { c.limit = &n })
}

// Provider is a metric.MeterProvider built by NewMeterProvider: the SDK's,
// or a no-op one when OTEL_SDK_DISABLED=true. Shut it down before the
// process exits so the last values reach the collector.
type Provider struct {
	embedded.MeterProvider

	meters metric.MeterProvider
	sdk    *sdkmetric.MeterProvider // nil when disabled
	down   atomic.Bool
	// flushFirst: Shutdown flushes before it stops the periodic readers.
	flushFirst bool

	health   *exportHealth // nil without an OTLP exporter; see export_health.go
	interval time.Duration // of the OTLP exports; 0 without them
	// cardinalityLimit is the limit given to the SDK; 0 when disabled.
	cardinalityLimit int
}

var _ metric.MeterProvider = (*Provider)(nil)

// NewMeterProvider builds a MeterProvider configured by the standard OTEL_*
// variables alone, exporting over OTLP by default. Options given in code
// override the environment. It does not connect: the OTLP exporter dials
// lazily, so a missing collector never delays start-up. ctx bounds resource
// detection and exporter creation and is not retained.
//
// OTEL_METRICS_EXPORTER, a comma-separated list (any case, spaces allowed):
//
//   - "otlp" (the default when unset): OTLP with a periodic reader, below.
//   - "prometheus": a Prometheus exporter serving /metrics on
//     OTEL_EXPORTER_PROMETHEUS_HOST (default localhost) and
//     OTEL_EXPORTER_PROMETHEUS_PORT (default 9464). Shutdown stops the server.
//   - "console": a periodic reader printing to standard output.
//   - "none": no exporter (readers given with WithReader still work).
//
// Unknown names fail with an *EnvError naming the variable and the value.
// A single "prometheus", "console" or "none" is built by contrib's
// autoexport (go.opentelemetry.io/contrib/exporters/autoexport), which
// also reads OTEL_METRICS_PRODUCERS. autoexport reads the variable as one
// exact name, so for lists and other spellings this package builds each
// entry the way autoexport does. "otlp" is always built here, because
// autoexport's OTLP reader comes finished: its protocol default is
// http/protobuf, and neither WithExportInterval, the exporter options nor
// WithOTLPExporterWrapper could reach it.
//
// OTLP, read by the OpenTelemetry Go SDK (v1.47.0) itself:
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: a
//     URL such as http://127.0.0.1:4317, not an address (default
//     http://localhost:4317 for gRPC, http://localhost:4318 for HTTP; an
//     http:// scheme means a plain-text connection, https:// TLS)
//   - OTEL_EXPORTER_OTLP_[METRICS_]HEADERS (key=value,..., values URL-encoded)
//   - OTEL_EXPORTER_OTLP_[METRICS_]INSECURE
//   - OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT (ms, default 10000)
//   - OTEL_EXPORTER_OTLP_[METRICS_]COMPRESSION (gzip or none)
//   - OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE,
//     OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_CERTIFICATE,
//     OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_KEY
//   - OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
//     OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION
//   - OTEL_METRIC_EXPORT_INTERVAL (ms, default 60000),
//     OTEL_METRIC_EXPORT_TIMEOUT (ms, default 30000)
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
//   - OTEL_METRICS_EXEMPLAR_FILTER
//
// Read here, because the Go SDK does not:
//
//   - OTEL_SDK_DISABLED: "true" (any case) returns a no-op Provider; no
//     exporter or reader is created and options are ignored. A value other
//     than true or false is reported (an *EnvWarning through otel.Handle)
//     and read as false, as the specification says.
//   - OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "grpc" (default, unlike the specification's and autoexport's
//     http/protobuf, because gRPC on 4317 is what this project's collector
//     and its users' setups have used from the start) or "http/protobuf".
//     Other values (http/json has no Go exporter) fail with an *EnvError.
//     WithExporterOptions or WithHTTPExporterOptions override it.
//
// Every value above that the SDK would ignore, misread or silently replace
// by a default is reported before anything is built (see EnvError and
// EnvWarning): an endpoint without a scheme, a duration with a unit
// ("5s"), a non-boolean INSECURE, malformed headers or resource
// attributes fail the call; an
// unknown compression, temporality, aggregation or exemplar filter is
// warned about once, naming the value used instead. Header values are
// never printed.
//
// The resource holds service.name (OTEL_SERVICE_NAME, else
// unknown_service:<executable>), service.instance.id (a random UUID made
// once per process, so replicas are told apart, unless
// OTEL_RESOURCE_ATTRIBUTES sets one), host.name, the telemetry.sdk.*
// attributes, OTEL_RESOURCE_ATTRIBUTES, and finally WithResource.
//
// Export failures go to otel.Handle.
func NewMeterProvider(ctx context.Context, opts ...ProviderOption) (*Provider, error) {
	if sdkDisabled() {
		return &Provider{meters: noop.NewMeterProvider()}, nil
	}
	warnSDKDisabled()
	var cfg providerConfig
	for _, o := range opts {
		if o != nil {
			o.applyProvider(&cfg)
		}
	}

	// Validate everything before any work, so a typo fails fast.
	exporters, err := metricsExporters()
	if err != nil {
		return nil, err
	}
	var protocol string
	if exporters.otlp {
		if protocol, err = exportProtocol(cfg); err != nil {
			return nil, err
		}
	}
	if err := checkEnv(exporters.otlp, exporters.otlp || exporters.console, exporters.prometheus); err != nil {
		return nil, err
	}

	res, err := newResource(ctx, cfg.resource)
	if err != nil {
		return nil, err
	}

	p := &Provider{}
	cfg.wrap = append([]func(sdkmetric.Exporter) sdkmetric.Exporter{p.exportHealthWrapper(&cfg)}, cfg.wrap...)
	readers, err := exporters.readers(ctx, protocol, &cfg)
	if err != nil {
		return nil, err
	}
	sdkOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, r := range append(readers, cfg.readers...) {
		sdkOpts = append(sdkOpts, sdkmetric.WithReader(r))
	}
	if len(cfg.views) > 0 {
		sdkOpts = append(sdkOpts, sdkmetric.WithView(cfg.views...))
	}
	limit := providerCardinalityLimit(cfg)
	sdkOpts = append(sdkOpts, sdkmetric.WithCardinalityLimit(limit))
	mp := sdkmetric.NewMeterProvider(sdkOpts...)
	p.meters, p.sdk, p.flushFirst, p.cardinalityLimit = mp, mp, cfg.periodicReaders > 0, limit
	return p, nil
}

// Meter implements metric.MeterProvider.
func (p *Provider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return p.meters.Meter(name, opts...)
}

// Disabled reports whether OTEL_SDK_DISABLED made this a no-op Provider.
func (p *Provider) Disabled() bool { return p.sdk == nil }

// ForceFlush collects and exports now, within ctx. It returns nil when
// disabled.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.ForceFlush(ctx); err != nil {
		return fmt.Errorf("otelmetrics: flush metrics: %w", err)
	}
	return nil
}

// Shutdown exports the last values and releases the exporter and readers.
// It returns when ctx is done at the latest (give it a deadline: with the
// Collector down, an export otherwise waits for its own timeout); without
// a deadline the SDK bounds it by OTEL_METRIC_EXPORT_TIMEOUT. Only the
// first call does anything; later ones return nil. After Shutdown,
// instruments record nothing.
//
// With a periodic reader (OTLP, console) it first flushes, then stops the
// reader. The SDK stops the reader's run loop by cancelling whatever
// collection or export that loop is running, and hands the resulting
// "context canceled" to otel.Handle: a spurious error at about 1 shutdown
// in 12 of the example orchestrator. After a flush the loop is idle and
// its ticker was just reset to a full interval, so there is nothing to
// cancel. The reader's own final collection and export follow as always
// (a second export at shutdown, of the same cumulative values). Readers
// built by autoexport (a lone "console") are not flushed first.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil || !p.down.CompareAndSwap(false, true) {
		return nil
	}
	var flushErr error
	if p.flushFirst {
		flushErr = p.sdk.ForceFlush(ctx)
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		if flushErr != nil {
			err = flushErr // the first failure says why; the second repeats it
		}
		return fmt.Errorf("otelmetrics: shut down meter provider: %w", err)
	}
	return nil
}

// sdkDisabled reads OTEL_SDK_DISABLED as the specification's boolean: only
// "true", in any case, is true.
func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(envSDKDisabled)), "true")
}

// exportProtocol picks the OTLP protocol: exporter options in code first,
// then the signal-specific variable, then the general one, then gRPC.
func exportProtocol(cfg providerConfig) (string, error) {
	switch {
	case len(cfg.grpcOpts) > 0 && len(cfg.httpOpts) > 0:
		return "", ErrConflictingExporterOptions
	case len(cfg.grpcOpts) > 0:
		return ProtocolGRPC, nil
	case len(cfg.httpOpts) > 0:
		return ProtocolHTTPProtobuf, nil
	}
	for _, name := range []string{envMetricsProtocol, envProtocol} {
		v := os.Getenv(name)
		if strings.TrimSpace(v) == "" {
			continue
		}
		switch p := strings.ToLower(strings.TrimSpace(v)); p {
		case ProtocolGRPC, ProtocolHTTPProtobuf:
			return p, nil
		default:
			return "", &EnvError{Name: name, Value: v, Supported: ProtocolGRPC + ", " + ProtocolHTTPProtobuf}
		}
	}
	return ProtocolGRPC, nil
}

// newOTLPReader builds the OTLP exporter, wrapped as asked, in a periodic
// reader. The SDK reads its OTEL_EXPORTER_OTLP_* variables here and
// applies the options from code after them. Neither exporter connects
// before the first export.
func newOTLPReader(ctx context.Context, protocol string, cfg *providerConfig) (sdkmetric.Reader, error) {
	var (
		exp sdkmetric.Exporter
		err error
	)
	if protocol == ProtocolHTTPProtobuf {
		exp, err = otlpmetrichttp.New(ctx, cfg.httpOpts...)
	} else {
		exp, err = otlpmetricgrpc.New(ctx, cfg.grpcOpts...)
	}
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: create OTLP %s exporter: %w", protocol, err)
	}
	for _, w := range cfg.wrap {
		if wrapped := w(exp); wrapped != nil {
			exp = wrapped
		}
	}
	return cfg.periodic(exp), nil
}

// periodic puts exp in a periodic reader.
func (c *providerConfig) periodic(exp sdkmetric.Exporter) sdkmetric.Reader {
	c.periodicReaders++
	return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(c.interval))
}

// newResource detects the resource; later sources win over earlier ones, so
// the environment overrides the defaults and WithResource overrides all.
func newResource(ctx context.Context, override *resource.Resource) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(defaultServiceName()),
			semconv.ServiceInstanceID(instanceID()),
		),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
		resource.WithSchemaURL(semconv.SchemaURL),
	)
	if err != nil {
		if res == nil {
			return nil, fmt.Errorf("otelmetrics: detect resource: %w", err)
		}
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry costs that entry,
		// not the metrics: keep what was detected and report the rest.
		otel.Handle(fmt.Errorf("otelmetrics: detect resource: %w", err))
	}
	if override == nil {
		return res, nil
	}
	merged, err := resource.Merge(res, override)
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, fmt.Errorf("otelmetrics: merge resource: %w", err)
	}
	// On a schema URL conflict merged has no schema URL but all attributes,
	// which is what the backend needs.
	return merged, nil
}

// defaultServiceName is the specification's fallback service.name.
func defaultServiceName() string {
	exe := "go"
	if len(os.Args) > 0 && os.Args[0] != "" {
		exe = filepath.Base(os.Args[0])
	}
	return "unknown_service:" + exe
}

// instanceID is this process's service.instance.id: a random (version 4)
// UUID, made once so every Provider of the process reports the same one.
var instanceID = sync.OnceValue(func() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
})
