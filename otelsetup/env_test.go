package otelsetup

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
)

// captureHandled routes otel.Handle to the test until it ends and returns
// what was handed to it so far.
func captureHandled(t *testing.T) func() []error {
	t.Helper()
	var (
		mu  sync.Mutex
		got []error
	)
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), got...)
	}
}

// Every OTEL_* value the SDK would ignore, misread or silently replace is
// reported once, naming the variable, the value and what is used instead:
// an *EnvError from NewMeterProvider, or one *EnvWarning through
// otel.Handle where the specification says to warn.
func TestMisconfiguredVariables(t *testing.T) {
	cases := []struct {
		name, value string
		warn        bool   // a warning, else an error
		want        string // part of the message: the value used instead, or the hint
	}{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317", false, "did you mean http://127.0.0.1:4317?"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", false, "did you mean http://localhost:4317?"},
		{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector", false, "localhost:4317"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:4317", false, "URL with scheme and host"},
		{"OTEL_SDK_DISABLED", "1", true, "using false (the SDK stays enabled)"},
		{"OTEL_SDK_DISABLED", "yes", true, "using false (the SDK stays enabled)"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP", true, "using none"},
		{"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd", true, "using none"},
		{"OTEL_EXPORTER_OTLP_INSECURE", "yes", false, "TLS even for an http:// endpoint"},
		{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "deltas", true, "using cumulative"},
		{"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "exponential", true, "using explicit_bucket_histogram"},
		{"OTEL_METRICS_EXEMPLAR_FILTER", "sometimes", true, "using trace_based"},
		{"OTEL_METRIC_EXPORT_INTERVAL", "5s", false, "would have used 60000"},
		{"OTEL_METRIC_EXPORT_INTERVAL", "0", false, "would have used 60000"},
		{"OTEL_METRIC_EXPORT_TIMEOUT", "30 s", false, "would have used 30000"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s", false, "would have used 10000"},
		{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-1", false, "would have used 10000"},
		{"OTEL_RESOURCE_ATTRIBUTES", "team=core,broken", false, `not pairs: "broken"`},
		{"OTEL_EXPORTER_OTLP_HEADERS", "api-key", false, "pair 1 has no '='"},
		{"OTEL_EXPORTER_PROMETHEUS_PORT", "http", false, "TCP port number"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			cleanEnv(t)
			sink := startSink(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
			if tc.name == envPromPort {
				t.Setenv(envMetricsExporter, "prometheus")
			}
			t.Setenv(tc.name, tc.value)
			handled := captureHandled(t)
			p, err := NewMeterProvider(context.Background())
			var msgs []string
			for _, e := range handled() {
				msgs = append(msgs, e.Error())
			}
			if tc.warn {
				if err != nil {
					t.Fatalf("NewMeterProvider: %v, want a warning only", err)
				}
				shutdown(t, p)
				var w *EnvWarning
				got := handled()
				if len(got) != 1 || !errors.As(got[0], &w) || w.Name != tc.name || w.Value != tc.value {
					t.Fatalf("handled %q, want one *EnvWarning for %s=%q", msgs, tc.name, tc.value)
				}
				if !strings.Contains(got[0].Error(), tc.want) {
					t.Fatalf("warning %q does not say %q", got[0], tc.want)
				}
				return
			}
			var envErr *EnvError
			if !errors.As(err, &envErr) || envErr.Name != tc.name || p != nil {
				t.Fatalf("NewMeterProvider = %v, %v; want an *EnvError for %s", p, err, tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("error %q does not name %s or say %q", err, tc.name, tc.want)
			}
			if len(msgs) != 0 {
				t.Fatalf("besides the error, handled %q", msgs)
			}
		})
	}
}

// Valid spellings pass without a word.
func TestWellConfiguredVariablesAreQuiet(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":                       "http://" + sink.addr,
		"OTEL_SDK_DISABLED":                                 "FALSE",
		"OTEL_EXPORTER_OTLP_COMPRESSION":                    "gzip",
		"OTEL_EXPORTER_OTLP_INSECURE":                       "true",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta",
		"OTEL_METRIC_EXPORT_INTERVAL":                       "3600000",
		"OTEL_EXPORTER_OTLP_TIMEOUT":                        "5000",
		"OTEL_RESOURCE_ATTRIBUTES":                          "team=core,region=eu%20west",
		"OTEL_EXPORTER_OTLP_HEADERS":                        "x-tenant=acme,x-api-key=s3cr%3Dt",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":               "http://" + sink.addr + "/",
	} {
		t.Setenv(k, v)
	}
	handled := captureHandled(t)
	p := newProvider(t)
	addOne(t, p, "quiet.count", 1)
	shutdown(t, p)
	if v, ok := sink.lastSum("quiet.count"); !ok || v != 1 {
		t.Fatalf("quiet.count = %d (present %v), want 1", v, ok)
	}
	if got := handled(); len(got) != 0 {
		t.Fatalf("handled %v", got)
	}
}

// Header values are secrets: a malformed header variable is reported
// without its value, and the SDK (which would log it) never reads it.
func TestMalformedHeadersNeverPrintTheSecret(t *testing.T) {
	const secret = "s3cr%zzt-token"
	for _, v := range []string{"x-api-key=" + secret, "x-tenant=acme,Bearer " + secret, "bad key=" + secret} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+deadAddr(t))
			t.Setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", v)
			handled := captureHandled(t)
			_, err := NewMeterProvider(context.Background())
			var envErr *EnvError
			if !errors.As(err, &envErr) || envErr.Name != "OTEL_EXPORTER_OTLP_METRICS_HEADERS" {
				t.Fatalf("err = %v, want an *EnvError for the headers", err)
			}
			all := err.Error()
			for _, e := range handled() {
				all += e.Error()
			}
			if strings.Contains(all, "s3cr") || strings.Contains(all, "token") {
				t.Fatalf("the secret was printed: %s", all)
			}
		})
	}
}

// Endpoints the SDK reads as meant pass the check.
func TestEndpointForms(t *testing.T) {
	for _, v := range []string{"http://127.0.0.1:4317", "https://collector.example:443", "http://[::1]:4317/", "unix:///run/otelcol.sock"} {
		t.Setenv(envEndpoint, v)
		if err := checkEndpoint(envEndpoint); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}
