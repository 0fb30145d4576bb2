package otelsetup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/internal/testkit/testcerts"
)

// A TLS file the SDK would drop with a log line (and go on with the
// system's CAs, or without a client certificate) fails the provider with
// an *EnvError naming the variable and the file, for either signal; the
// content of a key file never appears in the message.
func TestTLSFilesChecked(t *testing.T) {
	ca := testcerts.NewCA(t, "env")
	client := ca.Client(t, "app")
	other := testcerts.NewCA(t, "other").Client(t, "app")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	keyPEM, err := os.ReadFile(client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(keyPEM), "\n")[1] // a line of the key itself

	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"CA file missing", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{"CA file not PEM", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": notPEM}, "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"},
		{"traces CA file missing", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": missing}, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"},
		{"certificate without key", map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": client.CertFile}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{"key without certificate", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY": client.KeyFile}, "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE"},
		{"key file missing", map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": client.CertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": missing}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{"certificate not PEM", map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_CLIENT_KEY": client.KeyFile}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
		{"key of another certificate", map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": client.CertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": other.KeyFile}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{"key given as certificate", map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": client.KeyFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": client.KeyFile}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
		{"TLS files with a plain-text endpoint", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{"TLS files with INSECURE", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile, "OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			clearTraceEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			signalErr := func(err error) {
				t.Helper()
				var envErr *EnvError
				if !errors.As(err, &envErr) || envErr.Name != tc.wantVar {
					t.Fatalf("err = %v, want an *EnvError naming %s", err, tc.wantVar)
				}
				if strings.Contains(err.Error(), keyBody) {
					t.Fatal("the error holds the key")
				}
			}
			mp, mErr := NewMeterProvider(context.Background())
			tp, tErr := NewTracerProvider(context.Background())
			t.Cleanup(func() { shutdownNow(mp, tp) })
			switch {
			case strings.Contains(tc.wantVar, "_METRICS_"):
				signalErr(mErr)
				if tErr != nil {
					t.Fatalf("the tracer provider failed on a metrics variable: %v", tErr)
				}
			case strings.Contains(tc.wantVar, "_TRACES_"):
				signalErr(tErr)
				if mErr != nil {
					t.Fatalf("the meter provider failed on a traces variable: %v", mErr)
				}
			default:
				signalErr(mErr)
				signalErr(tErr)
			}
		})
	}
}

// Well-formed TLS files for an https:// endpoint pass.
func TestTLSFilesAccepted(t *testing.T) {
	cleanEnv(t)
	clearTraceEnv(t)
	ca := testcerts.NewCA(t, "env")
	client := ca.Client(t, "app")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.CertFile)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", client.CertFile)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", client.KeyFile)
	mp, err := NewMeterProvider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tp, err := NewTracerProvider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	shutdownNow(mp, tp)
}

// shutdownNow shuts down providers that have nowhere to export to, without
// waiting for their final exports; either may be nil.
func shutdownNow(mp *MeterProvider, tp *TracerProvider) {
	// A context each: the SDK's TracerProvider skips its processors when
	// handed a context already done.
	if tp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = tp.Shutdown(ctx)
		cancel()
	}
	if mp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = mp.Shutdown(ctx)
		cancel()
	}
}
