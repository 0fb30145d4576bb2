package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/internal/testkit/testcerts"
	"github.com/pgmqotel/pgmqotel/otelsetup"
)

// These tests export over TLS to the real Collector (e2e/cmd/otelcol,
// with the shipped collector-config.yaml and a TLS section merged on top),
// configured by the OTEL_EXPORTER_OTLP_* variables alone, with
// certificates the test makes: the metrics reach the Collector's
// Prometheus exporter and the spans its trace backend (the Collector's own
// OTLP receiver, in this process).
//
// What a wrong configuration does, and how export resumes:
//   - a CA that did not sign the Collector's certificate: one
//     *otelsetup.ExportError per signal naming OTEL_EXPORTER_OTLP_CERTIFICATE,
//     the application running on; once the Collector presents a
//     certificate that CA signed (its files replaced, reloaded by the
//     Collector), the same providers export again;
//   - no client certificate where the Collector requires one: one error per
//     signal naming OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY;
//     the variables are read when the providers are built, so export
//     resumes with new providers built with them (a restart).

// protocols are the OTLP transports the TLS tests run over.
var protocols = []string{otelsetup.ProtocolGRPC, otelsetup.ProtocolHTTPProtobuf}

// tlsCollector is the Collector with TLS on both OTLP receivers.
type tlsCollector struct {
	*stack.Collector
	certFile, keyFile string // the files the Collector reads its certificate from
}

// startTLSCollector starts the Collector presenting server's certificate
// (its files reloaded every 100 ms) and, with clientCA, requiring client
// certificates that CA signed. Spans go to backend.
func startTLSCollector(t *testing.T, server testcerts.Pair, clientCA *testcerts.CA, backend string) *tlsCollector {
	t.Helper()
	dir := t.TempDir()
	c := &tlsCollector{certFile: filepath.Join(dir, "collector.pem"), keyFile: filepath.Join(dir, "collector-key.pem")}
	c.install(t, server)
	tls := fmt.Sprintf("\n        tls:\n          cert_file: %s\n          key_file: %s\n          reload_interval: 100ms\n", c.certFile, c.keyFile)
	if clientCA != nil {
		tls += fmt.Sprintf("          client_ca_file: %s\n", clientCA.CertFile)
	}
	overlay := filepath.Join(dir, "tls.yaml")
	if err := os.WriteFile(overlay, []byte("receivers:\n  otlp:\n    protocols:\n      grpc:"+tls+"      http:"+tls), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a first build included
	defer cancel()
	col, err := stack.StartCollector(ctx, stack.CollectorOptions{Dir: dir, Configs: []string{overlay}, BackendEndpoint: backend})
	if err != nil {
		t.Fatalf("start collector: %v", err)
	}
	c.Collector = col
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), exportWait)
		defer cancel()
		_ = col.Stop(ctx)
		if t.Failed() {
			t.Logf("collector log:\n%s", col.LogTail(30))
		}
	})
	return c
}

// install puts p where the Collector reads its certificate, each file
// replaced whole (written aside, then renamed).
func (c *tlsCollector) install(t *testing.T, p testcerts.Pair) {
	t.Helper()
	for from, to := range map[string]string{p.CertFile: c.certFile, p.KeyFile: c.keyFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".new", to); err != nil {
			t.Fatal(err)
		}
	}
}

// endpoint is the Collector's OTLP endpoint for protocol, over TLS.
func (c *tlsCollector) endpoint(protocol string) string {
	if protocol == otelsetup.ProtocolHTTPProtobuf {
		return "https://" + c.HTTPAddr
	}
	return "https://" + c.GRPCAddr
}

// probes is the application's counter as the Collector's Prometheus
// exporter serves it, and whether it is there.
func (c *tlsCollector) probes(t *testing.T) (float64, bool) {
	t.Helper()
	v, found, err := c.ExportedMetric(context.Background(), "e2e_tls_probe_total", nil)
	if err != nil {
		t.Fatal(err)
	}
	return v, found
}

// traceBackend is the Collector's OTLP receiver, in this process, standing
// for the trace backend the Collector exports to.
type traceBackend struct {
	sink *consumertest.TracesSink
	addr string
}

func startTraceBackend(t *testing.T) *traceBackend {
	t.Helper()
	ctx := context.Background()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	b := &traceBackend{sink: new(consumertest.TracesSink), addr: freeLoopbackAddr(t)}
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = b.addr
	r, err := f.CreateTraces(ctx, receivertest.NewNopSettings(f.Type()), cfg, b.sink)
	if err != nil {
		t.Fatalf("create trace backend: %v", err)
	}
	if err := r.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatalf("start trace backend: %v", err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return b
}

// spans counts the spans named name received so far.
func (b *traceBackend) spans(name string) int {
	n := 0
	for _, td := range b.sink.AllTraces() {
		for i := range td.ResourceSpans().Len() {
			sss := td.ResourceSpans().At(i).ScopeSpans()
			for j := range sss.Len() {
				ss := sss.At(j).Spans()
				for k := range ss.Len() {
					if ss.At(k).Name() == name {
						n++
					}
				}
			}
		}
	}
	return n
}

// setTLSEnv points both signals at endpoint over protocol with the given
// TLS variables, clearing what a developer's shell might have set.
func setTLSEnv(t *testing.T, endpoint, protocol string, tls map[string]string) {
	t.Helper()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "1000",
		"OTEL_METRIC_EXPORT_INTERVAL": "100",
		"OTEL_SERVICE_NAME":           "e2e-tls",
	}
	for k, v := range tls {
		env[k] = v
	}
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_TRACES_SAMPLER", "OTEL_PROPAGATORS", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"} {
		t.Setenv(k, "")
	}
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	for _, s := range []string{"", "METRICS_", "TRACES_"} {
		for _, v := range []string{"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"} {
			t.Setenv("OTEL_EXPORTER_OTLP_"+s+v, "")
		}
	}
	setOTelEnv(t, env)
}

// tlsApp is an application with both providers from the environment, a
// counter and spans of its own.
type tlsApp struct {
	mp      *otelsetup.MeterProvider
	tp      *otelsetup.TracerProvider
	probe   metric.Int64Counter
	exports atomic.Int64 // OTLP metric exports attempted
	steps   int
}

func startTLSApp(t *testing.T) *tlsApp {
	t.Helper()
	ctx := context.Background()
	a := &tlsApp{}
	mp, err := otelsetup.NewMeterProvider(ctx, otelsetup.WithOTLPMetricExporterWrapper(a.count))
	if err != nil {
		t.Fatalf("NewMeterProvider: %v", err)
	}
	tp, err := otelsetup.NewTracerProvider(ctx)
	if err != nil {
		t.Fatalf("NewTracerProvider: %v", err)
	}
	a.mp, a.tp = mp, tp
	if a.probe, err = mp.Meter("e2e").Int64Counter("e2e.tls.probe"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.stop() })
	return a
}

// stop shuts the providers down, each within a second.
func (a *tlsApp) stop() {
	for _, shut := range []func(context.Context) error{a.tp.Shutdown, a.mp.Shutdown} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = shut(ctx)
		cancel()
	}
}

func (a *tlsApp) count(exp sdkmetric.Exporter) sdkmetric.Exporter {
	return exportCounter{Exporter: exp, n: &a.exports}
}

type exportCounter struct {
	sdkmetric.Exporter
	n *atomic.Int64
}

func (e exportCounter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	e.n.Add(1)
	return e.Exporter.Export(ctx, rm)
}

// step is a unit of the application's work: a count and a span.
func (a *tlsApp) step() {
	ctx := context.Background()
	a.probe.Add(ctx, 1)
	_, span := a.tp.Tracer("e2e").Start(ctx, "tls probe")
	span.End()
	a.steps++
}

// tlsWait bounds each wait of the TLS tests. It only turns a hang into a
// failure: after failed handshakes, gRPC reconnects with a growing backoff.
const tlsWait = 2 * time.Minute

// workUntil steps every 20 ms until cond holds, failing the test after
// tlsWait; the application never waits on its telemetry.
func (a *tlsApp) workUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(tlsWait)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) || i > int(tlsWait/(20*time.Millisecond)) {
			t.Fatalf("%s: not within %v (%d steps, %d metric exports)", what, tlsWait, a.steps, a.exports.Load())
		}
		a.step()
		time.Sleep(20 * time.Millisecond)
	}
}

// arrived reports whether the application's metrics and spans reached the
// Collector's exporters.
func arrived(t *testing.T, c *tlsCollector, b *traceBackend) func() bool {
	return func() bool {
		v, ok := c.probes(t)
		return ok && v > 0 && b.spans("tls probe") > 0
	}
}

// handledExportErrors collects the *otelsetup.ExportError values handed to
// otel.Handle, and the other errors.
type handledExportErrors struct {
	mu     sync.Mutex
	export []*otelsetup.ExportError
	other  []string
}

func watchHandled(t *testing.T) *handledExportErrors {
	t.Helper()
	h := &handledExportErrors{}
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		var e *otelsetup.ExportError
		if errors.As(err, &e) {
			h.export = append(h.export, e)
		} else {
			h.other = append(h.other, err.Error())
		}
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	return h
}

// bySignal returns the export errors of signal.
func (h *handledExportErrors) bySignal(signal string) []*otelsetup.ExportError {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*otelsetup.ExportError
	for _, e := range h.export {
		if e.Signal == signal {
			out = append(out, e)
		}
	}
	return out
}

// mustReportOnce fails unless each signal's export failed with exactly one
// report, naming vars, after more failed metric exports than that.
func (h *handledExportErrors) mustReportOnce(t *testing.T, a *tlsApp, vars ...string) {
	t.Helper()
	a.workUntil(t, "failures reported for both signals, and ten failed metric exports", func() bool {
		return len(h.bySignal("metrics")) > 0 && len(h.bySignal("traces")) > 0 && a.exports.Load() >= 10
	})
	for _, signal := range []string{"metrics", "traces"} {
		got := h.bySignal(signal)
		if len(got) != 1 || !slices.Equal(got[0].Vars, vars) {
			t.Errorf("%s: %d reports (%v), want one naming %v", signal, len(got), got, vars)
		} else {
			t.Logf("%s, reported once in %d metric exports: %v", signal, a.exports.Load(), got[0])
		}
	}
	if a.mp.ExportHealthy() {
		t.Error("ExportHealthy while every export fails")
	}
}

// Metrics and spans reach the Collector over TLS, and over mutual TLS,
// with gRPC and with HTTP.
func TestTLSToCollector(t *testing.T) {
	ca := testcerts.NewCA(t, "collector-ca")
	server, client := ca.Server(t, "collector"), ca.Client(t, "app")
	for _, protocol := range protocols {
		for _, mutual := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/mutual=%v", protocol, mutual), func(t *testing.T) {
				h := watchHandled(t)
				backend := startTraceBackend(t)
				env := map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile}
				var clientCA *testcerts.CA
				if mutual {
					clientCA = ca
					env["OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"] = client.CertFile
					env["OTEL_EXPORTER_OTLP_CLIENT_KEY"] = client.KeyFile
				}
				c := startTLSCollector(t, server, clientCA, backend.addr)
				setTLSEnv(t, c.endpoint(protocol), protocol, env)
				a := startTLSApp(t)
				a.workUntil(t, "metrics and spans at the Collector", arrived(t, c, backend))
				h.mu.Lock()
				defer h.mu.Unlock()
				if len(h.export) > 0 || len(h.other) > 0 {
					t.Errorf("errors handled: %v %q", h.export, h.other)
				}
			})
		}
	}
}

// A CA that did not sign the Collector's certificate: one error per
// signal naming OTEL_EXPORTER_OTLP_CERTIFICATE, the application running
// on; when the Collector's certificate is replaced by one that CA signed,
// the same providers export again.
func TestTLSToCollectorWrongCA(t *testing.T) {
	ca, wrong := testcerts.NewCA(t, "app-trusts"), testcerts.NewCA(t, "collector-uses")
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			h := watchHandled(t)
			backend := startTraceBackend(t)
			c := startTLSCollector(t, wrong.Server(t, "collector"), nil, backend.addr)
			setTLSEnv(t, c.endpoint(protocol), protocol, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile})
			a := startTLSApp(t)
			h.mustReportOnce(t, a, "OTEL_EXPORTER_OTLP_CERTIFICATE")

			c.install(t, ca.Server(t, "collector"))
			fixed := time.Now()
			a.workUntil(t, "export resumed with the same providers", arrived(t, c, backend))
			t.Logf("exports resumed %v after the certificate was replaced", time.Since(fixed).Round(time.Millisecond))
			a.workUntil(t, "exports healthy again", a.mp.ExportHealthy)
		})
	}
}

// No client certificate where the Collector requires one: one error per
// signal naming the client certificate variables, the application running
// on; new providers built with them export.
func TestTLSToCollectorMissingClientCertificate(t *testing.T) {
	ca := testcerts.NewCA(t, "collector-ca")
	server, client := ca.Server(t, "collector"), ca.Client(t, "app")
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			h := watchHandled(t)
			backend := startTraceBackend(t)
			c := startTLSCollector(t, server, ca, backend.addr)
			setTLSEnv(t, c.endpoint(protocol), protocol, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca.CertFile})
			a := startTLSApp(t)
			h.mustReportOnce(t, a, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY")

			a.stop()
			t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", client.CertFile)
			t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", client.KeyFile)
			restarted := startTLSApp(t)
			restarted.workUntil(t, "export with the client certificate", arrived(t, c, backend))
		})
	}
}
