package otelsetup

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// Issue 18: with an endpoint that refuses connections, the export error
// names the endpoint and the variable it came from, and Shutdown's error
// says what did not finish in time.
func TestRefusedEndpointErrorsNameTheVariable(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			handled := captureHandled(t)
			endpoint := "http://" + deadAddr(t)
			t.Setenv(v, endpoint)
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
			p := newProvider(t)
			addOne(t, p, "refused.count", 1)
			eventually(t, hangGuard, "a failed export", func() bool { return len(handled()) > 0 })
			msg := handled()[0].Error()
			for _, want := range []string{v, endpoint, "connection refused"} {
				if !strings.Contains(msg, want) {
					t.Errorf("export error %q does not mention %q", msg, want)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := p.Shutdown(ctx)
			if err == nil {
				t.Fatal("Shutdown succeeded with nothing listening")
			}
			t.Logf("Shutdown: %v", err)
			for _, want := range []string{"final export", endpoint, v} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Shutdown's error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// exportErrors returns the *ExportError values handled so far.
func exportErrors(handled func() []error) []*ExportError {
	var out []*ExportError
	for _, err := range handled() {
		var e *ExportError
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	return out
}

// A failure is handed to otel.Handle once, however many periodic exports
// repeat it; after an export succeeds, the next failure is reported again.
// ForceFlush returns the error every time.
func TestExportFailureReportedOnce(t *testing.T) {
	cleanEnv(t)
	handled := captureHandled(t)
	addr := deadAddr(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	var calls countingExporterCalls
	p := newProvider(t, WithMetricExportInterval(20*time.Millisecond), WithOTLPMetricExporterWrapper(calls.wrap))
	addOne(t, p, "once.count", 1)

	eventually(t, hangGuard, "five failed exports", func() bool { return calls.n.Load() >= 5 })
	if got := exportErrors(handled); len(got) != 1 || got[0].kind != "refused" {
		t.Fatalf("after %d failed exports, otel.Handle got %v; want one refused", calls.n.Load(), handled())
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		err := p.ForceFlush(ctx)
		cancel()
		var e *ExportError
		if !errors.As(err, &e) {
			t.Fatalf("ForceFlush: %v, want an *ExportError", err)
		}
	}

	// The Collector comes up on that address: exports succeed.
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the address was taken meanwhile: %v", err)
	}
	sink := serveSink(t, lis)
	// Healthy again: the exporter saw a success, not only the sink a request.
	eventually(t, hangGuard, "an export to succeed", func() bool { return sink.exports() > 0 && p.ExportHealthy() })
	// And goes away: the failure is new again. (Stopping the server may
	// first fail an export otherwise, on the closing connection: another
	// failure, reported once too.)
	sink.stop()
	refusals := func() int {
		n := 0
		for _, e := range exportErrors(handled) {
			if e.kind == "refused" {
				n++
			}
		}
		return n
	}
	eventually(t, hangGuard, "the refusal reported again", func() bool { return refusals() == 2 })
	reported, since := len(exportErrors(handled)), calls.n.Load()
	eventually(t, hangGuard, "five more failed exports", func() bool { return calls.n.Load() >= since+5 })
	if n := len(exportErrors(handled)); n != reported {
		t.Fatalf("%d failures reported, want %d: %v", n, reported, handled())
	}
}

// Span exports are explained and reported once alike.
func TestSpanExportFailureReportedOnce(t *testing.T) {
	clearTraceEnv(t)
	handled := captureHandled(t)
	endpoint := "http://" + deadAddr(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	ctx := context.Background()
	tp, err := NewTracerProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_, span := tp.Tracer("test").Start(ctx, "lost")
		span.End()
		eventually(t, hangGuard, "the span's export to fail", func() bool { return len(handled()) > 0 })
		time.Sleep(time.Duration(i) * 30 * time.Millisecond) // several schedule delays, so exports repeat
	}
	got := exportErrors(handled)
	if len(got) != 1 {
		t.Fatalf("otel.Handle got %v; want one *ExportError", handled())
	}
	for _, want := range []string{"traces export to " + endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "nothing listens"} {
		if !strings.Contains(got[0].Error(), want) {
			t.Errorf("%q does not mention %q", got[0], want)
		}
	}
	// A span still queued at Shutdown: its failed export is returned,
	// explained.
	_, span := tp.Tracer("test").Start(ctx, "last")
	span.End()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := tp.Shutdown(sctx); err == nil || !strings.Contains(err.Error(), endpoint) {
		t.Errorf("Shutdown: %v, want an error naming %s", err, endpoint)
	}
}
