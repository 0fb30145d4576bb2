package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Exporter names accepted in OTEL_METRICS_EXPORTER.
const (
	ExporterOTLP       = "otlp"
	ExporterPrometheus = "prometheus"
	ExporterConsole    = "console"
	ExporterNone       = "none"
)

// exporterSet is OTEL_METRICS_EXPORTER, read and checked.
type exporterSet struct {
	otlp, prometheus, console bool
	// exact is the single name autoexport can read from the variable as
	// it is written ("prometheus", "console" or "none"), else "".
	exact string
}

// metricsExporters reads OTEL_METRICS_EXPORTER: a comma-separated list of
// names, in any case, with spaces around them; unset means otlp. "none"
// next to other names adds nothing. Unknown names fail with an *EnvError
// naming the variable, the value and the names accepted (autoexport's own
// error names neither).
func metricsExporters() (exporterSet, error) {
	v, set := lookup(envMetricsExporter)
	if !set || strings.TrimSpace(v) == "" {
		return exporterSet{otlp: true}, nil
	}
	var s exporterSet
	for item := range strings.SplitSeq(v, ",") {
		switch strings.ToLower(strings.TrimSpace(item)) {
		case ExporterOTLP:
			s.otlp = true
		case ExporterPrometheus:
			s.prometheus = true
		case ExporterConsole:
			s.console = true
		case ExporterNone:
		default:
			return exporterSet{}, &EnvError{Name: envMetricsExporter, Value: v,
				Supported: "a comma-separated list of otlp, prometheus, console, none"}
		}
	}
	switch v {
	case ExporterPrometheus, ExporterConsole, ExporterNone:
		s.exact = v
	}
	return s, nil
}

// readers builds the readers of the set.
func (s exporterSet) readers(ctx context.Context, protocol string, cfg *providerConfig) (readers []sdkmetric.Reader, err error) {
	defer func() {
		if err != nil {
			for _, r := range readers {
				_ = r.Shutdown(ctx) // e.g. free the Prometheus port
			}
			readers = nil
		}
	}()
	if s.exact != "" {
		// The variable holds exactly one name autoexport knows.
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("otelmetrics: %s=%s: %w", envMetricsExporter, s.exact, err)
		}
		if autoexport.IsNoneMetricReader(r) {
			return nil, nil
		}
		return []sdkmetric.Reader{r}, nil
	}
	if s.otlp {
		r, err := newOTLPReader(ctx, protocol, cfg)
		if err != nil {
			return readers, err
		}
		readers = append(readers, r)
	}
	if s.prometheus {
		r, err := newPrometheusReader()
		if err != nil {
			return readers, err
		}
		readers = append(readers, r)
	}
	if s.console {
		exp, err := stdoutmetric.New()
		if err != nil {
			return readers, fmt.Errorf("otelmetrics: console exporter: %w", err)
		}
		readers = append(readers, cfg.periodic(exp))
	}
	return readers, nil
}

// newPrometheusReader builds what autoexport builds for "prometheus", for
// the spellings autoexport cannot read (lists, other case): an exporter on
// its own registry, served on OTEL_EXPORTER_PROMETHEUS_HOST (default
// localhost) and _PORT (default 9464) at /metrics.
func newPrometheusReader() (sdkmetric.Reader, error) {
	reg := prometheus.NewRegistry()
	reader, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: prometheus exporter: %w", err)
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
			fmt.Errorf("otelmetrics: Prometheus exporter: listen on %s (%s, %s): %w", addr, envPromHost, envPromPort, err),
			reader.Shutdown(context.Background()))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			otel.Handle(fmt.Errorf("otelmetrics: Prometheus HTTP server on %s: %w", addr, err))
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
