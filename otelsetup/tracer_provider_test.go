package otelsetup

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// traceSink counts the spans an OTLP endpoint (gRPC or HTTP) received.
type traceSink struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (s *traceSink) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (s *traceSink) add(req *coltracepb.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s.names = append(s.names, sp.Name)
			}
		}
	}
}

func (s *traceSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names)
}

// startTraceSinks starts a gRPC and an HTTP OTLP traces endpoint.
func startTraceSinks(t *testing.T) (grpcSink, httpSink *traceSink, grpcURL, httpURL string) {
	t.Helper()
	grpcSink, httpSink = &traceSink{}, &traceSink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcSink)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		httpSink.add(&req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	t.Cleanup(hs.Close)
	return grpcSink, httpSink, "http://" + ln.Addr().String(), hs.URL
}

// clearTraceEnv unsets every variable NewTracerProvider and NewPropagator
// read, for the duration of the test.
func clearTraceEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS",
		"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"} {
		t.Setenv(k, "")
	}
}

// TestNewTracerProviderFromEnv runs a table of variables: where the spans
// go, whether they are sampled.
func TestNewTracerProviderFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		to      string // "grpc", "http" or "" (nowhere)
		sampled bool
		wantErr bool
	}{
		{name: "default is OTLP gRPC", to: "grpc", sampled: true},
		{name: "otlp named", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, to: "grpc", sampled: true},
		{name: "http/protobuf", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, to: "http", sampled: true},
		{name: "traces protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, to: "grpc", sampled: true},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, sampled: true},
		{name: "sampler off", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, to: "grpc"},
		{name: "ratio 0", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, to: "grpc"},
		{name: "disabled", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "nonesuch"}, wantErr: true},
		{name: "batch size not a number", env: map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "lots"}, wantErr: true},
		{name: "delay with a unit", env: map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "5s"}, wantErr: true},
		{name: "endpoint without a scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "127.0.0.1:4317"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearTraceEnv(t)
			g, h, gURL, hURL := startTraceSinks(t)
			url := gURL
			if tc.env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf" {
				url = hURL
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			tp, err := NewTracerProvider(ctx)
			if tc.wantErr {
				if err == nil {
					_ = tp.Shutdown(ctx)
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(ctx, "probe")
			if span.SpanContext().IsSampled() != tc.sampled {
				t.Errorf("sampled = %v, want %v", span.SpanContext().IsSampled(), tc.sampled)
			}
			span.End()
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			var wantG, wantH []string
			switch {
			case tc.to == "grpc" && tc.sampled:
				wantG = []string{"probe"}
			case tc.to == "http" && tc.sampled:
				wantH = []string{"probe"}
			}
			if !slices.Equal(g.got(), wantG) || !slices.Equal(h.got(), wantH) {
				t.Errorf("gRPC sink got %v, HTTP sink %v; want %v and %v", g.got(), h.got(), wantG, wantH)
			}
		})
	}
}

// The batcher reads OTEL_BSP_*: with batches of one span and an hour's
// delay, a span reaches the collector at once, before any flush; a value
// the SDK would silently replace is an *EnvError naming the variable.
func TestSpanBatcherFromEnv(t *testing.T) {
	clearTraceEnv(t)
	g, _, url, _ := startTraceSinks(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	tp, err := NewTracerProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(ctx) }()
	_, span := tp.Tracer("test").Start(ctx, "at-once")
	span.End()
	eventually(t, hangGuard, "the span exported without a flush", func() bool { return len(g.got()) == 1 })

	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-1")
	_, err = NewSpanBatcher(tracetestNoop{})
	var envErr *EnvError
	if !errors.As(err, &envErr) || envErr.Name != "OTEL_BSP_MAX_QUEUE_SIZE" || envErr.Instead != "2048" {
		t.Fatalf("NewSpanBatcher with OTEL_BSP_MAX_QUEUE_SIZE=-1: %v, want an *EnvError naming it, instead 2048", err)
	}
}

type tracetestNoop struct{}

func (tracetestNoop) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (tracetestNoop) Shutdown(context.Context) error                             { return nil }

// Nil options are ignored; an added processor sees the spans next to the
// exporter.
func TestTracerProviderOptions(t *testing.T) {
	clearTraceEnv(t)
	g, _, url, _ := startTraceSinks(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	rec := &recordingProcessor{}
	tp, err := NewTracerProvider(context.Background(), nil, WithSpanExporter(nil), WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("x").Start(context.Background(), "s")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.ended != 1 || len(g.got()) != 1 {
		t.Errorf("the added processor saw %d spans, the exporter %v", rec.ended, g.got())
	}
}

type recordingProcessor struct {
	mu    sync.Mutex
	ended int
}

func (p *recordingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *recordingProcessor) OnEnd(sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	p.ended++
	p.mu.Unlock()
}
func (p *recordingProcessor) Shutdown(context.Context) error   { return nil }
func (p *recordingProcessor) ForceFlush(context.Context) error { return nil }

func TestNewPropagator(t *testing.T) {
	for _, tc := range []struct {
		env     string
		fields  []string
		wantErr bool
	}{
		{"", []string{"baggage", "traceparent", "tracestate"}, false},
		{"tracecontext", []string{"traceparent", "tracestate"}, false},
		{"tracecontext, baggage", []string{"baggage", "traceparent", "tracestate"}, false},
		{"b3", []string{"b3"}, false},
		{"none", nil, false},
		{"nonesuch", nil, true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("OTEL_PROPAGATORS", tc.env)
			p, err := NewPropagator()
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := p.Fields()
			slices.Sort(got)
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

// Issue 18: OTEL_TRACES_EXPORTER is read as OTEL_METRICS_EXPORTER is: a
// list, in any case, with spaces; an unknown name fails with an error that
// names the variable and lists the valid values.
func TestTracesExporterReadLikeMetrics(t *testing.T) {
	for _, tc := range []struct {
		value   string
		toGRPC  bool
		wantErr bool
	}{
		{value: "OTLP", toGRPC: true},
		{value: " otlp , none ", toGRPC: true},
		{value: "Otlp,Console", toGRPC: true},
		{value: "NONE"},
		{value: "nonesuch", wantErr: true},
		{value: "otlp,zipkin", wantErr: true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			clearTraceEnv(t)
			g, _, gURL, _ := startTraceSinks(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", gURL)
			t.Setenv("OTEL_TRACES_EXPORTER", tc.value)
			stdout := captureStdout(t)
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			tp, err := NewTracerProvider(ctx)
			if tc.wantErr {
				if err == nil {
					_ = tp.Shutdown(ctx)
					t.Fatal("no error")
				}
				for _, want := range []string{"OTEL_TRACES_EXPORTER", tc.value, "otlp", "console", "none"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(ctx, "probe")
			span.End()
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			var want []string
			if tc.toGRPC {
				want = []string{"probe"}
			}
			if !slices.Equal(g.got(), want) {
				t.Errorf("the collector got %v, want %v", g.got(), want)
			}
			console := strings.Contains(strings.ToLower(tc.value), "console")
			if printed := strings.Contains(stdout(), `"Name":"probe"`); printed != console {
				t.Errorf("span printed on standard output: %v, want %v", printed, console)
			}
		})
	}
}
