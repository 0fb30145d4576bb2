package otelmetrics

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
)

// These tests build their MeterProviders from the SDK, as an application
// does (package otelsetup tests its own), and speak OTLP/gRPC to a small
// in-process receiver built on the protocol's generated server; the
// Collector's own receiver is exercised by the e2e module.

// hangGuard bounds calls that must never block: far above any normal
// duration, it only turns a hang into a failure instead of a stuck test.
const hangGuard = 30 * time.Second

// otlpSink is an OTLP/gRPC metrics endpoint that keeps what it receives.
type otlpSink struct {
	colmetricpb.UnimplementedMetricsServiceServer

	addr   string
	mu     sync.Mutex
	reqs   []*colmetricpb.ExportMetricsServiceRequest
	others []*otlpSink // relayed into: they see what this one receives
}

func startSink(t *testing.T) *otlpSink {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &otlpSink{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s
}

func (s *otlpSink) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	others := s.others
	s.mu.Unlock()
	for _, o := range others {
		_, _ = o.Export(ctx, req)
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

func (s *otlpSink) exports() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// cleanEnv clears the variables the SDK's OTLP exporter reads, so a
// developer's shell cannot change a test's outcome.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
		"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
		"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
		"OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRIC_EXPORT_TIMEOUT",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(k, "")
	}
}

// newOTLPMeterProvider builds what an application's setup builds: an SDK
// MeterProvider exporting over OTLP/gRPC every interval (the exporter
// configured by the environment, then expOpts), and the options that
// declare it to New: the provider, its export health (unhealthy after two
// failed exports in a row) and its collection interval. The caller shuts
// it down.
func newOTLPMeterProvider(t testing.TB, interval time.Duration, expOpts []otlpmetricgrpc.Option, opts ...sdkmetric.Option) (*sdkmetric.MeterProvider, []Option) {
	t.Helper()
	exp, err := otlpmetricgrpc.New(context.Background(), expOpts...)
	if err != nil {
		t.Fatal(err)
	}
	h := &healthCounter{Exporter: exp}
	mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(h, sdkmetric.WithInterval(interval))))...)
	return mp, []Option{WithMeterProvider(mp), WithExportHealth(h.healthy), WithCollectionInterval(interval)}
}

// healthCounter counts an exporter's failed exports in a row.
type healthCounter struct {
	sdkmetric.Exporter
	failures atomic.Int64
}

func (h *healthCounter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := h.Exporter.Export(ctx, rm)
	if err != nil {
		h.failures.Add(1)
	} else {
		h.failures.Store(0)
	}
	return err
}

func (h *healthCounter) healthy() bool { return h.failures.Load() < 2 }
