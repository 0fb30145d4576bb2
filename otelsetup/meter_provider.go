package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

// ErrConflictingExporterOptions is returned by NewMeterProvider when both
// WithOTLPMetricGRPCOptions and WithOTLPMetricHTTPOptions are given: each
// pins a different protocol.
var ErrConflictingExporterOptions = errors.New("otelsetup: both gRPC and HTTP metric exporter options given")

// defaultExportInterval is the SDK's default OTEL_METRIC_EXPORT_INTERVAL.
const defaultExportInterval = time.Minute

// MeterProvider is a metric.MeterProvider built by NewMeterProvider: the
// SDK's, or a no-op one when OTEL_SDK_DISABLED=true. Give
// MetricsOptions to otelmetrics.New, and shut it down before the process
// exits (before otelmetrics' Metrics.Close) so the last values reach the
// Collector.
type MeterProvider struct {
	embedded.MeterProvider

	meters metric.MeterProvider
	sdk    *sdkmetric.MeterProvider // nil when disabled
	down   atomic.Bool
	// flushFirst: Shutdown flushes before it stops the periodic readers.
	flushFirst bool

	otlp      *otlpTarget         // nil without an OTLP exporter
	health    *exportHealth       // nil without an OTLP exporter; see export_health.go
	explained *explainingExporter // the OTLP exporter, wrapped; nil without one
	// interval is the periodic readers' export interval; 0 without them.
	interval time.Duration
	// limit is the cardinality limit given to the SDK; 0 when disabled.
	limit int
}

var _ metric.MeterProvider = (*MeterProvider)(nil)

// NewMeterProvider builds a MeterProvider configured by the standard OTEL_*
// variables alone, exporting over OTLP by default. Options given in code
// override the environment. It does not connect: the OTLP exporter dials
// lazily, so a missing collector never delays start-up. ctx bounds resource
// detection and exporter creation and is not retained.
//
// OTEL_METRICS_EXPORTER, a comma-separated list (any case, spaces allowed;
// OTEL_TRACES_EXPORTER is read the same way):
//
//   - "otlp" (the default when unset): OTLP with a periodic reader, below.
//   - "prometheus": a Prometheus exporter serving /metrics on
//     OTEL_EXPORTER_PROMETHEUS_HOST (default localhost) and
//     OTEL_EXPORTER_PROMETHEUS_PORT (default 9464). Shutdown stops the server.
//   - "console": a periodic reader printing to standard output.
//   - "none": no exporter (readers given with WithReader still work).
//
// Unknown names fail with an *EnvError naming the variable and the value
// and listing the valid names. A single "prometheus", "console" or "none"
// is built by contrib's autoexport
// (go.opentelemetry.io/contrib/exporters/autoexport), which also reads
// OTEL_METRICS_PRODUCERS. autoexport reads the variable as one exact name,
// so for lists and other spellings this package builds each entry the way
// autoexport does. "otlp" is always built here, because autoexport's OTLP
// reader comes finished: its protocol default is http/protobuf, and
// neither WithMetricExportInterval, the exporter options nor
// WithOTLPMetricExporterWrapper could reach it.
//
// OTLP, read by the OpenTelemetry Go SDK (v1.47.0) itself:
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: a
//     URL such as http://127.0.0.1:4317, not an address; an http:// scheme
//     means a plain-text connection, https:// TLS. Unset, the SDK sends
//     to localhost:4317 (gRPC) or :4318 (HTTP) over TLS.
//   - OTEL_EXPORTER_OTLP_[METRICS_]HEADERS (key=value,..., values URL-encoded)
//   - OTEL_EXPORTER_OTLP_[METRICS_]INSECURE
//   - OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT (ms, default 10000)
//   - OTEL_EXPORTER_OTLP_[METRICS_]COMPRESSION (gzip or none)
//   - OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE (the CA that signed the
//     Collector's certificate, PEM), OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_CERTIFICATE
//     and OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_KEY (this process's
//     certificate and key, PEM, for a Collector that requires one)
//   - OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
//     OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION
//   - OTEL_METRIC_EXPORT_INTERVAL (ms, default 60000),
//     OTEL_METRIC_EXPORT_TIMEOUT (ms, default 30000)
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
//   - OTEL_METRICS_EXEMPLAR_FILTER
//
// Read here, because the Go SDK does not:
//
//   - OTEL_SDK_DISABLED: "true" (any case) returns a no-op MeterProvider;
//     no exporter or reader is created and options are ignored. A value
//     other than true or false is reported (an *EnvWarning through
//     otel.Handle) and read as false, as the specification says.
//   - OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "grpc" (default, unlike the specification's and autoexport's
//     http/protobuf, because gRPC on 4317 is what this project's collector
//     and its users' setups use) or "http/protobuf". Other values
//     (http/json has no Go exporter) fail with an *EnvError.
//     WithOTLPMetricGRPCOptions or WithOTLPMetricHTTPOptions override it.
//   - OTEL_GO_X_CARDINALITY_LIMIT, see WithCardinalityLimit.
//
// Every value above that the SDK would ignore, misread or silently replace
// by a default is reported before anything is built (see EnvError and
// EnvWarning): an endpoint without a scheme, a duration with a unit
// ("5s"), a non-boolean INSECURE, malformed headers or resource
// attributes, a TLS file that cannot be read or parsed, a client
// certificate without its key fail the call; an unknown compression,
// temporality, aggregation or exemplar filter is warned about once, naming
// the value used instead. Header values and key files are never printed.
//
// The resource holds service.name (OTEL_SERVICE_NAME, else
// unknown_service:<executable>), service.instance.id (a random UUID made
// once per process, so replicas are told apart, unless
// OTEL_RESOURCE_ATTRIBUTES sets one), host.name, the telemetry.sdk.*
// attributes, OTEL_RESOURCE_ATTRIBUTES, and finally WithResource.
//
// A failed OTLP export goes to otel.Handle as an *ExportError naming the
// endpoint, what went wrong (nothing listening, a certificate not trusted,
// a client certificate missing...) and the variables to check, once per
// distinct failure: the same failure is reported again only after an
// export has succeeded. ExportHealthy tells whether exports work now.
func NewMeterProvider(ctx context.Context, opts ...MeterProviderOption) (*MeterProvider, error) {
	if sdkDisabled() {
		return &MeterProvider{meters: noop.NewMeterProvider()}, nil
	}
	warnSDKDisabled()
	cfg := newMeterConfig(opts)

	// Validate everything before any work, so a typo fails fast.
	exporters, err := readExporters(envMetricsExporter, ExporterOTLP, ExporterPrometheus, ExporterConsole, ExporterNone)
	if err != nil {
		return nil, err
	}
	var protocol string
	if exporters.has(ExporterOTLP) {
		if protocol, err = metricProtocol(cfg); err != nil {
			return nil, err
		}
	}
	if err := checkMetricsEnv(exporters); err != nil {
		return nil, err
	}

	res, err := newResource(ctx, cfg.resource)
	if err != nil {
		return nil, err
	}

	p := &MeterProvider{}
	readers, err := p.readers(ctx, exporters, protocol, &cfg)
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
	p.limit = cardinalityLimit(cfg)
	sdkOpts = append(sdkOpts, sdkmetric.WithCardinalityLimit(p.limit))
	mp := sdkmetric.NewMeterProvider(sdkOpts...)
	p.meters, p.sdk, p.flushFirst = mp, mp, cfg.periodicReaders > 0
	if cfg.periodicReaders > 0 {
		p.interval = exportInterval(cfg)
	}
	return p, nil
}

// Meter implements metric.MeterProvider.
func (p *MeterProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return p.meters.Meter(name, opts...)
}

// Disabled reports whether OTEL_SDK_DISABLED made this a no-op
// MeterProvider.
func (p *MeterProvider) Disabled() bool { return p.sdk == nil }

// MetricsOptions returns the otelmetrics.New options this provider
// implies: otelmetrics.WithMeterProvider(p), its cardinality limit
// (otelmetrics.WithDeclaredCardinalityLimit), and with OTLP its export
// health (otelmetrics.WithExportHealth: a replica that cannot export hands
// queue sampling over) and with a periodic reader its export interval
// (otelmetrics.WithCollectionInterval, from which the election's TTL is
// derived). Add your own after them:
//
//	m, err := otelmetrics.New(append(mp.MetricsOptions(),
//		otelmetrics.WithPool("", pool),
//		otelmetrics.WithQueueSampling(pool))...)
func (p *MeterProvider) MetricsOptions() []otelmetrics.Option {
	opts := []otelmetrics.Option{
		otelmetrics.WithMeterProvider(p),
		otelmetrics.WithDeclaredCardinalityLimit(p.limit),
	}
	if p.health != nil {
		opts = append(opts, otelmetrics.WithExportHealth(p.ExportHealthy))
	}
	if p.interval > 0 {
		opts = append(opts, otelmetrics.WithCollectionInterval(p.interval))
	}
	return opts
}

// ForceFlush collects and exports now, within ctx. It returns nil when
// disabled.
func (p *MeterProvider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	before := p.exports()
	err := p.sdk.ForceFlush(ctx)
	if err == nil {
		err = p.failedSince(before)
	}
	if err != nil {
		return fmt.Errorf("otelsetup: flush metrics: %w", p.otlp.unfinished("export", err))
	}
	return nil
}

// exports is the number of OTLP exports so far.
func (p *MeterProvider) exports() uint64 {
	if p.explained == nil {
		return 0
	}
	return p.explained.seq()
}

// failedSince returns the error of the last OTLP export, if it came after
// the before-th and failed: the periodic reader passes a failure already
// reported to otel.Handle on as a success.
func (p *MeterProvider) failedSince(before uint64) error {
	if p.explained == nil {
		return nil
	}
	return p.explained.failedSince(before)
}

// Shutdown exports the last values and releases the exporter and readers.
// It returns when ctx is done at the latest (give it a deadline: with the
// Collector down, an export otherwise waits for its own timeout); without
// a deadline the SDK bounds it by OTEL_METRIC_EXPORT_TIMEOUT. An export
// that does not finish in time is reported as such, naming the endpoint.
// Only the first call does anything; later ones return nil. After
// Shutdown, instruments record nothing.
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
func (p *MeterProvider) Shutdown(ctx context.Context) error {
	if p.sdk == nil || !p.down.CompareAndSwap(false, true) {
		return nil
	}
	before := p.exports()
	var flushErr error
	if p.flushFirst {
		flushErr = p.sdk.ForceFlush(ctx)
	}
	err := p.sdk.Shutdown(ctx)
	if err == nil {
		err = p.failedSince(before)
	}
	if err != nil {
		if flushErr != nil {
			err = flushErr // the first failure says why; the second repeats it
		}
		return fmt.Errorf("otelsetup: shut down meter provider: %w", p.otlp.unfinished("final export", err))
	}
	return nil
}

// metricProtocol picks the OTLP protocol: exporter options in code first,
// then the variables (see otlpProtocol).
func metricProtocol(cfg meterConfig) (string, error) {
	switch {
	case len(cfg.grpcOpts) > 0 && len(cfg.httpOpts) > 0:
		return "", ErrConflictingExporterOptions
	case len(cfg.grpcOpts) > 0:
		return ProtocolGRPC, nil
	case len(cfg.httpOpts) > 0:
		return ProtocolHTTPProtobuf, nil
	}
	return otlpProtocol(envMetricsProtocol)
}

// exportInterval is the periodic reader's interval as the SDK will see it.
func exportInterval(cfg meterConfig) time.Duration {
	if cfg.interval > 0 {
		return cfg.interval
	}
	if v := strings.TrimSpace(os.Getenv("OTEL_METRIC_EXPORT_INTERVAL")); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return defaultExportInterval
}
