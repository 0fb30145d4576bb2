package otelsetup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/pgmqotel/pgmqotel/internal/testkit/testcerts"
)

// startTLSSink serves an otlpSink over TLS with server's certificate,
// requiring a client certificate signed by clientCA when it is not nil.
func startTLSSink(t *testing.T, server testcerts.Pair, clientCA *testcerts.CA) *otlpSink {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(server.CertFile, server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		b, err := os.ReadFile(clientCA.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AppendCertsFromPEM(b)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &otlpSink{addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	colmetricpb.RegisterMetricsServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	s.stop = srv.Stop
	t.Cleanup(srv.Stop)
	return s
}

// Metrics reach a Collector that speaks TLS, and one that also requires a
// client certificate, through the OTEL_EXPORTER_OTLP_* TLS variables; a
// CA that did not sign the Collector's certificate, or no client
// certificate where one is required, is one *ExportError naming the
// variable to fix, handed to otel.Handle once however often exports
// repeat it, while the provider keeps working. (The e2e module runs the
// same against the real Collector.)
func TestTLSExport(t *testing.T) {
	ca, wrongCA := testcerts.NewCA(t, "collector-ca"), testcerts.NewCA(t, "wrong-ca")
	server, client := ca.Server(t, "collector"), ca.Client(t, "app")
	for _, tc := range []struct {
		name     string
		mTLS     bool
		env      map[string]string
		wantKind string   // "" when exports must arrive
		wantVars []string // named by the error
	}{
		{name: "server TLS", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile}},
		{name: "mutual TLS", mTLS: true, env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile,
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": client.CertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": client.KeyFile}},
		{name: "mutual TLS, metrics variables", mTLS: true, env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": ca.CertFile,
			"OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE": client.CertFile, "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY": client.KeyFile}},
		{name: "wrong CA", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": wrongCA.CertFile},
			wantKind: "unknown authority", wantVars: []string{"OTEL_EXPORTER_OTLP_CERTIFICATE"}},
		{name: "wrong CA, metrics variable", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": wrongCA.CertFile},
			wantKind: "unknown authority", wantVars: []string{"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"}},
		{name: "system CAs only", wantKind: "unknown authority", wantVars: []string{"OTEL_EXPORTER_OTLP_CERTIFICATE"}},
		{name: "no client certificate", mTLS: true, env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile},
			wantKind: "client certificate", wantVars: []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			handled := captureHandled(t)
			var clientCA *testcerts.CA
			if tc.mTLS {
				clientCA = ca
			}
			sink := startTLSSink(t, server, clientCA)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://"+sink.addr)
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var calls countingExporterCalls
			p := newProvider(t, WithMetricExportInterval(30*time.Millisecond), WithOTLPMetricExporterWrapper(calls.wrap))
			addOne(t, p, "tls.count", 1)
			if tc.wantKind == "" {
				eventually(t, hangGuard, "an export over TLS", func() bool { return sink.exports() > 0 })
				if got := exportErrors(handled); len(got) != 0 {
					t.Fatalf("export errors: %v", got)
				}
				return
			}
			eventually(t, hangGuard, "five failed exports", func() bool { return calls.n.Load() >= 5 })
			got := exportErrors(handled)
			if len(got) != 1 || got[0].kind != tc.wantKind || !slices.Equal(got[0].Vars, tc.wantVars) {
				t.Fatalf("after %d exports, otel.Handle got %v; want one %q failure naming %v", calls.n.Load(), handled(), tc.wantKind, tc.wantVars)
			}
			if n := sink.exports(); n != 0 {
				t.Fatalf("%d exports arrived", n)
			}
			// The provider still works: a flush says the same, in full.
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			if err := p.ForceFlush(ctx); err == nil || !strings.Contains(err.Error(), tc.wantVars[0]) {
				t.Fatalf("ForceFlush: %v, want the failure naming %s", err, tc.wantVars[0])
			}
		})
	}
}
