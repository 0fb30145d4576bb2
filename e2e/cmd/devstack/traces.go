package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// traceBackend is where the collector sends traces.
type traceBackend struct {
	// Endpoint is the OTLP gRPC backend (OTLP_BACKEND_ENDPOINT); empty
	// when traces are not exported.
	Endpoint string
	// Configs are collector overlays that go under the user's -configs.
	Configs []string
	// Jaeger is the Jaeger started here, if any.
	Jaeger *stack.Jaeger
	// HasUI says whether Jaeger serves its web UI (see stack.Jaeger.HasUI).
	HasUI bool
}

// noTraceBackend is the overlay for -jaeger=false without -backend: the
// traces pipeline keeps only the debug exporter, so the collector does not
// retry a backend that is not there and fill its log with "connection
// refused".
const noTraceBackend = `# Written by devstack: -jaeger=false and no -backend.
service:
  pipelines:
    traces:
      exporters: [debug]
`

// startTraces sets up the trace backend: -backend when given; else Jaeger
// (unless -jaeger=false), built into the cache the first time, which takes
// minutes and is said before it starts; else none.
func startTraces(ctx context.Context, dir string, jaeger bool, uiAddr, backend string, say func(string, ...any)) (*traceBackend, error) {
	switch {
	case backend != "":
		return &traceBackend{Endpoint: backend}, nil
	case !jaeger:
		overlay := filepath.Join(dir, "no-trace-backend.yaml")
		if err := os.WriteFile(overlay, []byte(noTraceBackend), 0o644); err != nil {
			return nil, err
		}
		return &traceBackend{Configs: []string{overlay}}, nil
	}
	bin, cached, err := stack.JaegerCached()
	if err != nil {
		return nil, err
	}
	if !cached && os.Getenv("JAEGER_BIN") == "" { // a JAEGER_BIN that is not there fails below
		say("jaeger: building Jaeger v2 from e2e/tools/jaeger (the first time takes about 8 minutes on 2 cores; kept as %s for later starts; -jaeger=false skips it)...\n", bin)
		began := time.Now()
		if _, err := stack.JaegerBinary(ctx); err != nil {
			return nil, fmt.Errorf("%w\n(-jaeger=false starts the stack without it)", err)
		}
		say("jaeger: built in %v\n", time.Since(began).Round(time.Second))
	} else {
		say("jaeger: %s\n", bin)
	}
	j, err := stack.StartJaegerAt(ctx, dir, uiAddr)
	if err != nil {
		return nil, fmt.Errorf("%w\n(-jaeger=false starts the stack without it)", err)
	}
	hasUI, err := j.HasUI(ctx)
	if err != nil {
		say("jaeger: could not tell whether it serves its web UI: %v\n", err)
	}
	return &traceBackend{Endpoint: j.OTLPAddr, Jaeger: j, HasUI: hasUI}, nil
}

// describe is the banner's lines about traces; service is the name to
// search for.
func (t *traceBackend) describe(service string) string {
	switch {
	case t.Jaeger != nil && t.HasUI:
		return fmt.Sprintf("Jaeger UI %s (service %q)", t.Jaeger.QueryURL, service)
	case t.Jaeger != nil:
		q := url.Values{"service": {service}, "limit": {"20"}}
		return fmt.Sprintf(`Jaeger %s: query API only, %s/api/traces?%s
                      (Jaeger built from Go modules has no web UI, which is a separate npm build;
                      JAEGER_BIN=<a Jaeger v2 release binary> brings it)`, t.Jaeger.QueryURL, t.Jaeger.QueryURL, q.Encode())
	case t.Endpoint != "":
		return "to " + t.Endpoint + " (-backend)"
	}
	return "not exported (-jaeger=false and no -backend); the collector log counts them (debug exporter)"
}
