package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// readers builds the readers of OTEL_METRICS_EXPORTER's exporters.
func (p *MeterProvider) readers(ctx context.Context, exporters exporterList, protocol string, cfg *meterConfig) (readers []sdkmetric.Reader, err error) {
	defer func() {
		if err != nil {
			for _, r := range readers {
				_ = r.Shutdown(ctx) // e.g. free the Prometheus port
			}
			readers = nil
		}
	}()
	switch exporters.exact {
	case ExporterPrometheus, ExporterConsole, ExporterNone:
		// The variable holds exactly one name autoexport knows.
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("otelsetup: %s=%s: %w", envMetricsExporter, exporters.exact, err)
		}
		if autoexport.IsNoneMetricReader(r) {
			return nil, nil
		}
		return []sdkmetric.Reader{r}, nil
	}
	if exporters.has(ExporterOTLP) {
		r, err := p.newOTLPReader(ctx, protocol, cfg)
		if err != nil {
			return readers, err
		}
		readers = append(readers, r)
	}
	if exporters.has(ExporterPrometheus) {
		r, err := newPrometheusReader()
		if err != nil {
			return readers, err
		}
		readers = append(readers, r)
	}
	if exporters.has(ExporterConsole) {
		exp, err := stdoutmetric.New()
		if err != nil {
			return readers, fmt.Errorf("otelsetup: console metric exporter: %w", err)
		}
		readers = append(readers, cfg.periodic(exp))
	}
	return readers, nil
}

// newOTLPReader builds the OTLP exporter, wrapped, in a periodic reader.
// The SDK reads its OTEL_EXPORTER_OTLP_* variables here and applies the
// options from code after them. Neither exporter connects before the
// first export.
//
// Innermost, an explainingExporter names each failure and follows the
// export health; then come the wrappers of WithOTLPMetricExporterWrapper,
// which see every export and error; outermost, a quietExporter keeps a
// failure already reported from reaching otel.Handle again through the
// periodic reader.
func (p *MeterProvider) newOTLPReader(ctx context.Context, protocol string, cfg *meterConfig) (sdkmetric.Reader, error) {
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
		return nil, fmt.Errorf("otelsetup: create OTLP %s metric exporter: %w", protocol, err)
	}
	p.otlp = newOTLPTarget("METRICS", protocol, len(cfg.grpcOpts)+len(cfg.httpOpts) > 0)
	p.health = &exportHealth{}
	p.explained = &explainingExporter{Exporter: exp, target: p.otlp, health: p.health}
	exp = p.explained
	for _, w := range cfg.wrap {
		if wrapped := w(exp); wrapped != nil {
			exp = wrapped
		}
	}
	return cfg.periodic(&quietExporter{Exporter: exp, target: p.otlp}), nil
}

// periodic puts exp in a periodic reader.
func (c *meterConfig) periodic(exp sdkmetric.Exporter) sdkmetric.Reader {
	c.periodicReaders++
	return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(c.interval))
}

// explainingExporter turns the errors of the OTLP exporter it wraps into
// *ExportError, records every outcome in the export health, and keeps the
// last one for ForceFlush and Shutdown.
type explainingExporter struct {
	sdkmetric.Exporter
	target *otlpTarget
	health *exportHealth
	last   atomic.Pointer[exportResult]
}

// exportResult is the outcome of the seq-th export.
type exportResult struct {
	seq uint64
	err error
}

// Export implements sdkmetric.Exporter.
func (e *explainingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := e.Exporter.Export(ctx, rm)
	e.health.record(err)
	if err == nil {
		e.target.reporter.succeeded()
	} else {
		err = e.target.explain(err)
	}
	e.last.Store(&exportResult{seq: e.seq() + 1, err: err})
	return err
}

// seq is the number of exports so far.
func (e *explainingExporter) seq() uint64 {
	if r := e.last.Load(); r != nil {
		return r.seq
	}
	return 0
}

// failedSince returns the error of the last export if it came after the
// before-th and failed. A flush's export is the last before the flush
// returns: the periodic reader runs both on one goroutine, and the flush
// resets its ticker.
func (e *explainingExporter) failedSince(before uint64) error {
	if r := e.last.Load(); r != nil && r.seq > before {
		return r.err
	}
	return nil
}

// quietExporter hides from the periodic reader, which hands every error to
// otel.Handle, a failure already reported since the last success.
// ForceFlush and Shutdown read their export's error from the
// explainingExporter instead.
type quietExporter struct {
	sdkmetric.Exporter
	target *otlpTarget
}

// Export implements sdkmetric.Exporter.
func (e *quietExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := e.Exporter.Export(ctx, rm)
	if err != nil && !e.target.reporter.first(err) {
		return nil
	}
	return err
}

// newPrometheusReader builds what autoexport builds for "prometheus", for
// the spellings autoexport cannot read (lists, other case): an exporter on
// its own registry, served on OTEL_EXPORTER_PROMETHEUS_HOST (default
// localhost) and _PORT (default 9464) at /metrics.
func newPrometheusReader() (sdkmetric.Reader, error) {
	reg := prometheus.NewRegistry()
	reader, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("otelsetup: prometheus exporter: %w", err)
	}
	host, port := os.Getenv(envPromHost), os.Getenv(envPromPort)
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "9464"
	}
	addr := net.JoinHostPort(host, port)
	lis, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, errors.Join(
			fmt.Errorf("otelsetup: Prometheus exporter: listen on %s (%s, %s): %w", addr, envPromHost, envPromPort, err),
			reader.Shutdown(context.Background()))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			otel.Handle(fmt.Errorf("otelsetup: Prometheus HTTP server on %s: %w", addr, err))
		}
	}()
	return servedReader{Reader: reader, srv: srv}, nil
}

// servedReader is a Prometheus reader with its HTTP server, which
// Shutdown also stops.
type servedReader struct {
	sdkmetric.Reader
	srv *http.Server
}

func (r servedReader) Shutdown(ctx context.Context) error {
	return errors.Join(r.Reader.Shutdown(ctx), r.srv.Shutdown(ctx))
}
