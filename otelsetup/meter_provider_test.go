package otelsetup

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// These tests speak OTLP/gRPC to a small in-process receiver built on the
// protocol's generated server; the Collector's own receiver is exercised by
// the e2e module, which may carry the Collector's dependencies.

// hangGuard bounds calls that must never block: far above any normal
// duration, it only turns a hang into a failure instead of a stuck test.
const hangGuard = 30 * time.Second

// otlpSink is an OTLP/gRPC metrics endpoint that keeps what it receives.
type otlpSink struct {
	colmetricpb.UnimplementedMetricsServiceServer

	addr   string
	delay  time.Duration // each export takes this long: a slow collector
	mu     sync.Mutex
	reqs   []*colmetricpb.ExportMetricsServiceRequest
	mds    []metadata.MD
	others []*otlpSink // relayed into: they see what this one receives
	stop   func()      // stops the server
}

func startSink(t *testing.T) *otlpSink {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveSink(t, lis)
}

// serveSink serves an otlpSink on lis until the test ends or stop.
func serveSink(t *testing.T, lis net.Listener) *otlpSink {
	t.Helper()
	s := &otlpSink{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	s.stop = srv.Stop
	t.Cleanup(srv.Stop)
	return s
}

func (s *otlpSink) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mds = append(s.mds, md)
	others := s.others
	s.mu.Unlock()
	for _, o := range others {
		_, _ = o.Export(ctx, req)
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// startHTTPSink serves OTLP/HTTP with protobuf bodies on /v1/metrics.
func startHTTPSink(t *testing.T) *otlpSink {
	t.Helper()
	s := &otlpSink{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if err == nil {
			err = proto.Unmarshal(body, req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mds = append(s.mds, metadata.MD{"x-origin": r.Header.Values("X-Origin")})
		s.mu.Unlock()
		resp, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.addr = srv.Listener.Addr().String()
	return s
}

func (s *otlpSink) exports() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// lastSum returns the last received value of the integer sum called name.
func (s *otlpSink) lastSum(name string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		v  int64
		ok bool
	)
	for _, req := range s.reqs {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() != name {
						continue
					}
					for _, dp := range m.GetSum().GetDataPoints() {
						v, ok = dp.GetAsInt(), true
					}
				}
			}
		}
	}
	return v, ok
}

// header returns the values of an incoming header across all exports.
func (s *otlpSink) header(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, md := range s.mds {
		out = append(out, md.Get(key)...)
	}
	return out
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// cleanEnv clears the variables NewMeterProvider or the SDK read, so a
// developer's shell cannot change a test's outcome.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		envSDKDisabled, envMetricsExporter, envProtocol, envMetricsProtocol,
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
		"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
		"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
		"OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRIC_EXPORT_TIMEOUT",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(k, "")
	}
	for _, s := range []string{"", "METRICS_", "TRACES_"} {
		for _, v := range []string{"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"} {
			t.Setenv("OTEL_EXPORTER_OTLP_"+s+v, "")
		}
	}
}

func newProvider(t *testing.T, opts ...MeterProviderOption) *MeterProvider {
	t.Helper()
	p, err := NewMeterProvider(context.Background(), opts...)
	if err != nil {
		t.Fatalf("NewMeterProvider: %v", err)
	}
	t.Cleanup(func() {
		// Best effort: tests that care shut down themselves.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

func shutdown(t *testing.T, p *MeterProvider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func addOne(t *testing.T, mp metric.MeterProvider, name string, n int64) {
	t.Helper()
	c, err := mp.Meter("setup_test").Int64Counter(name)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), n)
}

// within runs f and fails the test if it does not return before hangGuard.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s blocked for %v", what, hangGuard)
	}
}

func TestNewMeterProviderDisabled(t *testing.T) {
	for _, v := range []string{"true", "TRUE", " True "} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(envSDKDisabled, v)
			// Disabled wins over settings that would otherwise fail.
			t.Setenv(envMetricsExporter, "bogus")
			t.Setenv(envProtocol, "bogus")
			reader := sdkmetric.NewManualReader()
			p, err := NewMeterProvider(context.Background(), WithReader(reader))
			if err != nil {
				t.Fatalf("NewMeterProvider: %v", err)
			}
			if !p.Disabled() {
				t.Fatal("Disabled() = false")
			}
			addOne(t, p, "disabled.count", 1)
			if err := reader.Collect(context.Background(), &metricdata.ResourceMetrics{}); err == nil {
				t.Error("reader was registered on a disabled provider")
			}
			if err := p.ForceFlush(context.Background()); err != nil {
				t.Errorf("ForceFlush: %v", err)
			}
			for range 2 {
				if err := p.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			}
		})
	}
}

func TestNewMeterProviderNotDisabled(t *testing.T) {
	// Only "true" disables, as the specification's booleans say.
	for _, v := range []string{"", "false", "1", "yes"} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(envSDKDisabled, v)
			t.Setenv(envMetricsExporter, "none")
			reader := sdkmetric.NewManualReader()
			p := newProvider(t, WithReader(reader))
			if p.Disabled() {
				t.Fatal("Disabled() = true")
			}
			addOne(t, p, "enabled.count", 1)
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatalf("Collect: %v", err)
			}
			if len(rm.ScopeMetrics) != 1 {
				t.Fatalf("got %d scopes, want 1", len(rm.ScopeMetrics))
			}
		})
	}
}

func TestExportIntervalOptionBeatsEnv(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // an hour: never within the test
	p := newProvider(t, WithMetricExportInterval(20*time.Millisecond))
	addOne(t, p, "interval.count", 1)
	// Periodic exports before any flush or shutdown prove the option's interval.
	eventually(t, hangGuard, "two periodic exports", func() bool { return sink.exports() >= 2 })
}

func TestExportIntervalFromEnv(t *testing.T) {
	// The option is always passed to the SDK; unset, it must not mask the variable.
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "20")
	p := newProvider(t)
	addOne(t, p, "interval.count", 1)
	eventually(t, hangGuard, "two periodic exports", func() bool { return sink.exports() >= 2 })
}

func TestShutdownFlushesLastValue(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
	p := newProvider(t)
	addOne(t, p, "flush.count", 42)
	shutdown(t, p)
	// Shutdown returned after the receiver answered: no polling needed.
	if v, ok := sink.lastSum("flush.count"); !ok || v != 42 {
		t.Fatalf("flush.count = %d (present %v), want 42", v, ok)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestForceFlushExports(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
	p := newProvider(t)
	addOne(t, p, "flush.count", 7)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := p.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	if v, ok := sink.lastSum("flush.count"); !ok || v != 7 {
		t.Fatalf("flush.count = %d (present %v), want 7", v, ok)
	}
}

func TestExporterOptionsBeatEnv(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+deadAddr(t))
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-origin=env")
	t.Setenv(envProtocol, ProtocolHTTPProtobuf) // gRPC options pin gRPC
	p := newProvider(t, WithOTLPMetricGRPCOptions(
		otlpmetricgrpc.WithEndpoint(sink.addr),
		otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithHeaders(map[string]string{"x-origin": "code"}),
	))
	addOne(t, p, "override.count", 3)
	shutdown(t, p)
	if v, ok := sink.lastSum("override.count"); !ok || v != 3 {
		t.Fatalf("override.count = %d (present %v), want 3", v, ok)
	}
	// Shutdown flushes, then exports once more: each export carries "code".
	if got := sink.header("x-origin"); len(got) == 0 || slices.ContainsFunc(got, func(h string) bool { return h != "code" }) {
		t.Fatalf("x-origin headers = %q, want only code", got)
	}
}

func TestHeadersFromEnv(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	// Values are URL-encoded in the variable.
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-api-key=s3cr%3Dt")
	p := newProvider(t)
	addOne(t, p, "headers.count", 1)
	shutdown(t, p)
	// Shutdown flushes, then exports once more: both carry the headers.
	if got := sink.header("x-tenant"); !slices.Equal(got, []string{"acme", "acme"}) {
		t.Errorf("x-tenant = %q", got)
	}
	if got := sink.header("x-api-key"); !slices.Equal(got, []string{"s3cr=t", "s3cr=t"}) {
		t.Errorf("x-api-key = %q", got)
	}
}

func TestNoCollectorNeverBlocks(t *testing.T) {
	// blackHole accepts connections and never answers: a hung collector.
	blackHole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	t.Cleanup(func() { _ = blackHole.Close(); held.Wait() })
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := blackHole.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})

	for name, addr := range map[string]string{
		"nothing listening":       deadAddr(t),
		"collector never answers": blackHole.Addr().String(),
	} {
		t.Run(name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
			var (
				p      *MeterProvider
				newErr error
			)
			within(t, "NewMeterProvider", func() {
				p, newErr = NewMeterProvider(context.Background())
			})
			if newErr != nil {
				t.Fatalf("NewMeterProvider: %v", newErr)
			}
			addOne(t, p, "lost.count", 1)
			within(t, "ForceFlush", func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				if err := p.ForceFlush(ctx); err == nil {
					t.Error("ForceFlush reported success without a collector")
				}
			})
			within(t, "Shutdown", func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_ = p.Shutdown(ctx) // an error is expected; returning is what counts
			})
		})
	}
}

func TestNilOptionsIgnored(t *testing.T) {
	cleanEnv(t)
	t.Setenv(envMetricsExporter, "none")
	reader := sdkmetric.NewManualReader()
	p := newProvider(t, nil, WithReader(nil), WithResource(nil), WithReader(reader), nil)
	addOne(t, p, "nil.count", 5)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if len(rm.ScopeMetrics) != 1 || len(rm.ScopeMetrics[0].Metrics) != 1 {
		t.Fatalf("unexpected collection: %+v", rm.ScopeMetrics)
	}
}

func TestMetricsExporterNone(t *testing.T) {
	for _, v := range []string{"none", " NONE "} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			sink := startSink(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
			t.Setenv(envMetricsExporter, v)
			reader := sdkmetric.NewManualReader()
			p := newProvider(t, WithReader(reader))
			addOne(t, p, "none.count", 1)
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatalf("Collect: %v", err)
			}
			shutdown(t, p)
			// An OTLP reader would have flushed on Shutdown.
			if n := sink.exports(); n != 0 {
				t.Fatalf("%d OTLP exports with %s=%q", n, envMetricsExporter, v)
			}
		})
	}
}

func TestUnsupportedSettings(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		opts    []MeterProviderOption
		wantVar string // "" for ErrConflictingExporterOptions
	}{
		{name: "exporter unknown", env: map[string]string{envMetricsExporter: "jaeger"}, wantVar: envMetricsExporter},
		{name: "exporter list with unknown", env: map[string]string{envMetricsExporter: "otlp,zipkin"}, wantVar: envMetricsExporter},
		{name: "protocol http/json", env: map[string]string{envProtocol: "http/json"}, wantVar: envProtocol},
		{
			name:    "signal protocol wins",
			env:     map[string]string{envProtocol: ProtocolGRPC, envMetricsProtocol: "udp"},
			wantVar: envMetricsProtocol,
		},
		{
			name: "both exporter kinds",
			opts: []MeterProviderOption{
				WithOTLPMetricGRPCOptions(otlpmetricgrpc.WithInsecure()),
				WithOTLPMetricHTTPOptions(otlpmetrichttp.WithInsecure()),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			p, err := NewMeterProvider(context.Background(), tc.opts...)
			if p != nil {
				t.Fatal("provider returned with an error")
			}
			if tc.wantVar == "" {
				if !errors.Is(err, ErrConflictingExporterOptions) {
					t.Fatalf("err = %v, want ErrConflictingExporterOptions", err)
				}
				return
			}
			var envErr *EnvError
			if !errors.As(err, &envErr) || envErr.Name != tc.wantVar {
				t.Fatalf("err = %v, want *EnvError for %s", err, tc.wantVar)
			}
		})
	}
}

func TestSupportedProtocols(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		opts []MeterProviderOption
		http bool // whether the export must arrive over HTTP rather than gRPC
	}{
		{name: "default"},
		{name: "grpc", env: map[string]string{envProtocol: "grpc"}},
		{name: "http/protobuf", env: map[string]string{envProtocol: "HTTP/Protobuf"}, http: true},
		{name: "signal protocol wins", env: map[string]string{envProtocol: "http/json", envMetricsProtocol: "grpc"}},
		{name: "signal protocol http", env: map[string]string{envProtocol: "grpc", envMetricsProtocol: "http/protobuf"}, http: true},
		{name: "exporter otlp and none", env: map[string]string{envMetricsExporter: "otlp, none"}},
		{
			name: "HTTP options pin http",
			env:  map[string]string{envProtocol: "grpc"},
			opts: []MeterProviderOption{WithOTLPMetricHTTPOptions(otlpmetrichttp.WithHeaders(map[string]string{"x-origin": "code"}))},
			http: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			// A gRPC client cannot talk to the HTTP sink nor the reverse, so
			// the value arriving shows which exporter was built.
			sink := startSink(t)
			if tc.http {
				sink = startHTTPSink(t)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			p := newProvider(t, tc.opts...)
			addOne(t, p, "protocol.count", 1)
			shutdown(t, p)
			if v, ok := sink.lastSum("protocol.count"); !ok || v != 1 {
				t.Fatalf("protocol.count = %d (present %v), want 1", v, ok)
			}
		})
	}
}

func resourceOf(t *testing.T, opts ...MeterProviderOption) *resource.Resource {
	t.Helper()
	t.Setenv(envMetricsExporter, "none")
	reader := sdkmetric.NewManualReader()
	p := newProvider(t, append(opts, WithReader(reader))...)
	addOne(t, p, "resource.count", 1)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return rm.Resource
}

func attr(r *resource.Resource, key string) string {
	v, _ := r.Set().Value(attribute.Key(key))
	return v.String()
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestResource(t *testing.T) {
	t.Run("from env", func(t *testing.T) {
		cleanEnv(t)
		t.Setenv("OTEL_SERVICE_NAME", "orders")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=core")
		r := resourceOf(t)
		for k, want := range map[string]string{
			"service.name":                "orders",
			"deployment.environment.name": "test",
			"team":                        "core",
			"telemetry.sdk.language":      "go",
		} {
			if got := attr(r, k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if attr(r, "host.name") == "" {
			t.Error("no host.name")
		}
		id := attr(r, "service.instance.id")
		if !uuidV4.MatchString(id) {
			t.Errorf("service.instance.id = %q, want a UUID v4", id)
		}
		if again := attr(resourceOf(t), "service.instance.id"); again != id {
			t.Errorf("service.instance.id changed within the process: %q then %q", id, again)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		cleanEnv(t)
		r := resourceOf(t)
		if got := attr(r, "service.name"); !regexp.MustCompile(`^unknown_service:.+`).MatchString(got) {
			t.Errorf("service.name = %q, want unknown_service:<exe>", got)
		}
	})
	t.Run("env instance id wins", func(t *testing.T) {
		cleanEnv(t)
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=replica-7")
		if got := attr(resourceOf(t), "service.instance.id"); got != "replica-7" {
			t.Errorf("service.instance.id = %q, want replica-7", got)
		}
	})
	t.Run("WithResource wins", func(t *testing.T) {
		cleanEnv(t)
		t.Setenv("OTEL_SERVICE_NAME", "from-env")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core")
		r := resourceOf(t, WithResource(resource.NewWithAttributes(
			"https://example.com/other-schema", // a conflicting schema URL must not lose attributes
			attribute.String("service.name", "from-code"),
			attribute.String("region", "eu"),
		)))
		for k, want := range map[string]string{"service.name": "from-code", "region": "eu", "team": "core"} {
			if got := attr(r, k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
	})
	t.Run("malformed attributes fail, reported once", func(t *testing.T) {
		cleanEnv(t)
		t.Setenv("OTEL_SERVICE_NAME", "orders")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core,broken")
		handled := captureHandled(t)
		_, err := NewMeterProvider(context.Background())
		var envErr *EnvError
		if !errors.As(err, &envErr) || envErr.Name != "OTEL_RESOURCE_ATTRIBUTES" || !strings.Contains(err.Error(), `"broken"`) {
			t.Fatalf("err = %v, want an *EnvError naming OTEL_RESOURCE_ATTRIBUTES and the bad pair", err)
		}
		// The SDK never ran, so it reported nothing on top.
		if got := handled(); len(got) != 0 {
			t.Errorf("also handed to otel.Handle: %v", got)
		}
	})
}

func TestWithViews(t *testing.T) {
	cleanEnv(t)
	t.Setenv(envMetricsExporter, "none")
	reader := sdkmetric.NewManualReader()
	p := newProvider(t, WithReader(reader), WithViews(sdkmetric.NewView(
		sdkmetric.Instrument{Name: "before.rename"},
		sdkmetric.Stream{Name: "after.rename"},
	)))
	addOne(t, p, "before.rename", 1)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if got := rm.ScopeMetrics[0].Metrics[0].Name; got != "after.rename" {
		t.Fatalf("metric name = %q, want after.rename", got)
	}
}
