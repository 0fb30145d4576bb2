package deploycheck

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// validate runs `otelcol validate` on the given configuration files.
func validate(t *testing.T, env []string, files ...string) (string, error) {
	t.Helper()
	bin, err := stack.CollectorBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"validate"}
	for _, f := range files {
		args = append(args, "--config", f)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCollectorConfigsValidate validates the shipped configuration alone and
// with each documented overlay, with the real collector. The broken
// overlays show that validate does reject mistakes.
func TestCollectorConfigsValidate(t *testing.T) {
	root := repoRoot(t)
	base := filepath.Join(root, "collector-config.yaml")
	tempo := filepath.Join(root, "collector", "tempo.yaml")
	datadog := filepath.Join(root, "collector", "datadog.yaml")
	pgmq := filepath.Join(root, "collector", "pgmq-receiver.yaml")
	pgmqEnv := []string{"PGMQ_DATABASE_URL=postgres://monitor:s3cret@db.example:5432/app?sslmode=verify-full"}
	for _, tc := range []struct {
		name  string
		files []string
		env   []string
	}{
		{"base", []string{base}, nil},
		{"tempo", []string{base, tempo}, nil},
		{"datadog", []string{base, datadog}, []string{"DD_API_KEY=0123456789abcdef"}},
		{"tempo and datadog", []string{base, tempo, datadog}, nil},
		{"pgmq receiver", []string{base, pgmq}, pgmqEnv},
		{"pgmq receiver and tempo", []string{base, tempo, pgmq}, pgmqEnv},
		// docker-compose.yml's pgmq-receiver service, as it runs.
		{"pgmq receiver in compose", append([]string{base, pgmq}, strings.TrimPrefix(composeReceiverArgs[2], "--config=")),
			append(envList(composeReceiverEnv), "PGMQ_DATABASE_URL=postgres://postgres:postgres@postgres:5432/postgres?sslmode=disable")},
		{"overridden endpoints", []string{base}, []string{
			"OTLP_GRPC_ENDPOINT=127.0.0.1:14317", "OTLP_HTTP_ENDPOINT=127.0.0.1:14318",
			"PROMETHEUS_EXPORTER_ENDPOINT=127.0.0.1:18889", "OTLP_BACKEND_ENDPOINT=tempo.example:4317",
			"OTLP_BACKEND_INSECURE=false", "COLLECTOR_TELEMETRY_PORT=18888",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := validate(t, tc.env, tc.files...); err != nil {
				t.Errorf("validate %v: %v\n%s", tc.files, err, out)
			}
		})
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name, overlay, mention string
	}{
		{"undefined exporter", "service:\n  pipelines:\n    metrics:\n      exporters: [prometheus, nosuch]\n", "nosuch"},
		{"misspelt field", "exporters:\n  prometheus:\n    endpiont: 0.0.0.0:8889\n", "endpiont"},
		{"component not built in", "exporters:\n  kafka: {}\n", "kafka"},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			overlay := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(overlay, []byte(tc.overlay), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := validate(t, nil, base, overlay)
			if err == nil {
				t.Fatalf("validate accepted an overlay with a %s:\n%s", tc.name, out)
			}
			if !strings.Contains(out, tc.mention) {
				t.Errorf("validate error does not mention %q:\n%s", tc.mention, out)
			}
		})
	}
}

// The pgmq receiver's configuration errors stop the real Collector with a
// message naming the field: an empty database list, a DSN that does not
// parse, an interval below the minimum, a TTL shorter than an interval.
func TestReceiverConfigRejected(t *testing.T) {
	root := repoRoot(t)
	base := filepath.Join(root, "collector-config.yaml")
	pgmq := filepath.Join(root, "collector", "pgmq-receiver.yaml")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, overlay string
		env           []string
		mention       string
	}{
		{"empty database list", "receivers:\n  pgmq:\n    databases: []\n", nil, "receivers::pgmq: databases: at least one database is required"},
		{"unset DSN", "", []string{"PGMQ_DATABASE_URL="}, "receivers::pgmq::databases::0: dsn: empty"},
		{"bad DSN", "", []string{"PGMQ_DATABASE_URL=postgres://monitor:s3cret@db.example:notaport/app"}, "receivers::pgmq::databases::0: dsn: cannot parse"},
		{"interval below the minimum", "", []string{"PGMQ_COLLECTION_INTERVAL=500ms"}, "receivers::pgmq: collection_interval: 500ms is below the minimum of 1s"},
		{"TTL too short", "receivers:\n  pgmq:\n    election:\n      ttl: 5s\n", nil, "receivers::pgmq: election::ttl: 5s must exceed"},
		{"TLS twice", "receivers:\n  pgmq:\n    databases:\n      - dsn: postgres://db.example/app?sslmode=require\n        tls:\n          ca_file: /etc/ssl/ca.pem\n", nil,
			"receivers::pgmq::databases::0: tls: the dsn also sets TLS parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := []string{base, pgmq}
			if tc.overlay != "" {
				overlay := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
				if err := os.WriteFile(overlay, []byte(tc.overlay), 0o644); err != nil {
					t.Fatal(err)
				}
				files = append(files, overlay)
			}
			env := append([]string{"PGMQ_DATABASE_URL=postgres://monitor@db.example/app"}, tc.env...)
			out, err := validate(t, env, files...)
			if err == nil {
				t.Fatalf("validate accepted it:\n%s", out)
			}
			if !strings.Contains(out, tc.mention) {
				t.Errorf("validate error does not say %q:\n%s", tc.mention, out)
			}
			if strings.Contains(out, "s3cret") {
				t.Errorf("validate printed the password:\n%s", out)
			}
		})
	}
}

// envList writes env as NAME=value pairs.
func envList(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// traceBackend is an OTLP gRPC trace receiver standing in for Jaeger or
// Tempo: it records the names of the spans it receives.
type traceBackend struct {
	ptraceotlp.UnimplementedGRPCServer
	Addr  string
	mu    sync.Mutex
	names []string
}

func startTraceBackend(t *testing.T) *traceBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &traceBackend{Addr: l.Addr().String()}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, b)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("trace backend: %v", err)
		}
	})
	return b
}

// Export records the spans of one request.
func (b *traceBackend) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				b.names = append(b.names, spans.At(k).Name())
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

func (b *traceBackend) received(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.names, name)
}

// sendSpan exports one span named name with an SDK configured by env.
func sendSpan(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	_, span := tp.Tracer("github.com/pgmqotel/pgmqotel/e2e").Start(ctx, name)
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTracesReachBackend runs the collector with the base configuration
// (traces to OTLP_BACKEND_ENDPOINT, Jaeger in compose) and with the Tempo
// overlay (traces to TEMPO_ENDPOINT only), and checks that a span arrives
// at the intended backend and not at the other.
func TestTracesReachBackend(t *testing.T) {
	for _, tc := range []struct {
		name    string
		configs []string
		tempo   bool
	}{
		{"base config to jaeger", nil, false},
		{"tempo overlay", []string{"collector/tempo.yaml"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jaeger, tempo := startTraceBackend(t), startTraceBackend(t)
			c, err := stack.StartCollector(context.Background(), stack.CollectorOptions{
				Dir:             t.TempDir(),
				Configs:         tc.configs,
				BackendEndpoint: jaeger.Addr,
				Env:             []string{"TEMPO_ENDPOINT=" + tempo.Addr},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stopCollector(t, c) })
			for _, kv := range c.OTLPEnv() {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			t.Setenv("OTEL_SERVICE_NAME", "orchestrator")

			span := "span-" + strings.ReplaceAll(tc.name, " ", "-")
			sendSpan(t, span)
			want, other := jaeger, tempo
			if tc.tempo {
				want, other = tempo, jaeger
			}
			stack.WaitFor(t, stack.DefaultTimeout, "the span at the backend", func(context.Context) error {
				if !want.received(span) {
					return fmt.Errorf("span %s not received yet", span)
				}
				return nil
			})
			if other.received(span) {
				t.Errorf("span %s also reached the other backend", span)
			}
		})
	}
}

func stopCollector(t *testing.T, c *stack.Collector) {
	t.Helper()
	if t.Failed() {
		t.Logf("--- collector log (tail) ---\n%s", c.LogTail(40))
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("stop collector: %v", err)
	}
}
