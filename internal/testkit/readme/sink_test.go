package readme

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// sink is an OTLP/gRPC endpoint for metrics and traces that keeps the
// names of what it receives.
type sink struct {
	colmetricpb.UnimplementedMetricsServiceServer

	addr    string
	mu      sync.Mutex
	metrics []string
	spans   []string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, s)
	coltracepb.RegisterTraceServiceServer(srv, s.traces())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s
}

func (s *sink) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				s.metrics = append(s.metrics, m.GetName())
			}
		}
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// traceService adapts the sink to the trace service, whose Export method
// has another signature.
type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	*sink
}

func (s *sink) traces() coltracepb.TraceServiceServer { return traceService{sink: s} }

func (t traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				t.spans = append(t.spans, sp.GetName())
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (s *sink) hasMetric(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.metrics, name)
}

func (s *sink) metricNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Compact(slices.Sorted(slices.Values(s.metrics)))
}

// spansNamed counts the spans whose name starts with prefix.
func (s *sink) spansNamed(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, name := range s.spans {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}
