package main

import (
	"strings"
	"testing"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// line returns the banner line that starts with label (after the indent)
// and the lines that continue it.
func line(t *testing.T, banner, label string) string {
	t.Helper()
	var out []string
	for l := range strings.SplitSeq(banner, "\n") {
		switch {
		case strings.HasPrefix(l, "  "+label):
			out = append(out, l)
		case len(out) > 0 && strings.HasPrefix(l, "                      "):
			out = append(out, l)
		case len(out) > 0:
			return strings.Join(out, "\n")
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %q line in\n%s", label, banner)
	}
	return strings.Join(out, "\n")
}

// The environment printed for the user's own program names their service
// (OTEL_SERVICE_NAME from the caller's environment) or a placeholder it
// explains, never the orchestrator's name.
func TestBannerEnvironmentForYourApplication(t *testing.T) {
	b := banner{Dir: "/logs", GRPCAddr: "127.0.0.1:4317", Traces: &traceBackend{},
		OTLPEnv: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317"}, Orchestrator: true}
	t.Setenv("OTEL_SERVICE_NAME", "")
	app := line(t, b.String(), "your application")
	if strings.Contains(app, "OTEL_SERVICE_NAME=orchestrator") || !strings.Contains(app, "OTEL_SERVICE_NAME=your-service-name") ||
		!strings.Contains(app, "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317") || !strings.Contains(app, "your program's name") {
		t.Errorf("without OTEL_SERVICE_NAME:\n%s", app)
	}
	t.Setenv("OTEL_SERVICE_NAME", "billing")
	app = line(t, b.String(), "your application")
	if !strings.Contains(app, "OTEL_SERVICE_NAME=billing") || strings.Contains(app, "your program's name") {
		t.Errorf("with OTEL_SERVICE_NAME=billing:\n%s", app)
	}
}

// The traces line says where traces go: Jaeger's UI, Jaeger's query API
// when the build has no UI (with the way to get one), the -backend, or
// nowhere (with the way to add one).
func TestBannerTraces(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	j := &stack.Jaeger{QueryURL: "http://127.0.0.1:16686"}
	for _, tc := range []struct {
		name   string
		traces traceBackend
		want   []string
	}{
		{"jaeger with UI", traceBackend{Jaeger: j, HasUI: true}, []string{`Jaeger UI http://127.0.0.1:16686 (service "orchestrator")`}},
		{"jaeger without UI", traceBackend{Jaeger: j}, []string{"http://127.0.0.1:16686/api/traces?limit=20&service=orchestrator", "no web UI", "JAEGER_BIN"}},
		{"backend", traceBackend{Endpoint: "127.0.0.1:4317"}, []string{"to 127.0.0.1:4317 (-backend)"}},
		{"none", traceBackend{}, []string{"not exported (-jaeger=false and no -backend)"}},
	} {
		b := banner{Traces: &tc.traces, Orchestrator: true}
		got := line(t, b.String(), "traces")
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: traces line without %q:\n%s", tc.name, w, got)
			}
		}
	}
}
