package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// These tests configure the SDK through OTEL_* variables only and export to
// the Collector's own OTLP receiver, run in-process, so what the receiver
// decodes is exactly what a deployed Collector would see.

// exportWait bounds every wait for data at the receiver. It only turns a
// hang into a failure; the tests never assert on how long anything took.
const exportWait = 30 * time.Second

// otlpReceiver is the Collector's OTLP receiver feeding a MetricsSink.
type otlpReceiver struct {
	sink     *consumertest.MetricsSink
	grpcAddr string
	httpAddr string
}

// startOTLPReceiver starts the receiver with both protocols on loopback and
// include_metadata on, so the sink's contexts carry the request headers.
func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ctx := context.Background()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	rcv := &otlpReceiver{sink: new(consumertest.MetricsSink), grpcAddr: freeLoopbackAddr(t), httpAddr: freeLoopbackAddr(t)}
	g := cfg.Protocols.GRPC.GetOrInsertDefault()
	g.NetAddr.Endpoint = rcv.grpcAddr
	g.IncludeMetadata = true
	h := cfg.Protocols.HTTP.GetOrInsertDefault()
	h.ServerConfig.NetAddr.Endpoint = rcv.httpAddr
	h.ServerConfig.IncludeMetadata = true

	r, err := f.CreateMetrics(ctx, receivertest.NewNopSettings(f.Type()), cfg, rcv.sink)
	if err != nil {
		t.Fatalf("create OTLP receiver: %v", err)
	}
	if err := r.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatalf("start OTLP receiver: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Errorf("shut down OTLP receiver: %v", err)
		}
	})
	return rcv
}

// freeLoopbackAddr returns a loopback address that was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// exportPoint is one received number data point with its context.
type exportPoint struct {
	value    float64
	attrs    pcommon.Map
	resource pcommon.Map
}

// latest returns the last received point of the metric name whose
// attributes include want.
func (r *otlpReceiver) latest(name string, want ...attribute.KeyValue) (exportPoint, bool) {
	var (
		last  exportPoint
		found bool
	)
	for _, md := range r.sink.AllMetrics() {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() != name {
						continue
					}
					for _, dp := range numberPoints(m).All() {
						if hasAttrs(dp.Attributes(), want) {
							last, found = exportPoint{value: numberValue(dp), attrs: dp.Attributes(), resource: rm.Resource().Attributes()}, true
						}
					}
				}
			}
		}
	}
	return last, found
}

// await polls until the metric has a point with the attributes and a value
// accepted by ok, and returns it.
func (r *otlpReceiver) await(t *testing.T, ok func(float64) bool, name string, want ...attribute.KeyValue) exportPoint {
	t.Helper()
	deadline := time.Now().Add(exportWait)
	for {
		p, found := r.latest(name, want...)
		if found && ok(p.value) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no acceptable %s%v at the receiver after %v; last %v (found %v)", name, want, exportWait, p.value, found)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustHave fails unless the metric's last received point has the value.
func (r *otlpReceiver) mustHave(t *testing.T, want float64, name string, attrs ...attribute.KeyValue) {
	t.Helper()
	p, found := r.latest(name, attrs...)
	if !found || p.value != want {
		t.Fatalf("%s%v = %v (found %v), want %v", name, attrs, p.value, found, want)
	}
}

// headerValues returns an incoming request header across all exports.
func (r *otlpReceiver) headerValues(key string) []string {
	var out []string
	for _, ctx := range r.sink.Contexts() {
		out = append(out, client.FromContext(ctx).Metadata.Get(key)...)
	}
	return out
}

func numberPoints(m pmetric.Metric) pmetric.NumberDataPointSlice {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints()
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints()
	}
	return pmetric.NewNumberDataPointSlice()
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func hasAttrs(m pcommon.Map, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := m.Get(string(kv.Key))
		if !ok || v.AsString() != kv.Value.String() {
			return false
		}
	}
	return true
}

func str(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// setOTelEnv configures the SDK for one test, clearing what a developer's
// shell might have set.
func setOTelEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_METRICS_EXPORTER",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
		"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
		"OTEL_METRIC_EXPORT_INTERVAL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func newEnvProvider(t *testing.T, opts ...otelsetup.MeterProviderOption) *otelsetup.MeterProvider {
	t.Helper()
	mp, err := otelsetup.NewMeterProvider(context.Background(), opts...)
	if err != nil {
		t.Fatalf("NewMeterProvider: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = mp.Shutdown(ctx) // tests that care shut down themselves
	})
	return mp
}

func shutdownProvider(t *testing.T, mp *otelsetup.MeterProvider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exportWait)
	defer cancel()
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestExportFromEnvToCollectorOverGRPC(t *testing.T) {
	rcv := startOTLPReceiver(t)
	setOTelEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + rcv.grpcAddr,
		"OTEL_EXPORTER_OTLP_INSECURE": "true",
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-tenant=acme,authorization=Bearer%20t0ken",
		"OTEL_METRIC_EXPORT_INTERVAL": "200",
		"OTEL_SERVICE_NAME":           "e2e-orchestrator",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=e2e,service.version=1.2.3",
	})
	mp := newEnvProvider(t)
	if mp.Disabled() {
		t.Fatal("provider disabled")
	}

	ctx := context.Background()
	meter := mp.Meter("e2e")
	jobs, err := meter.Int64Counter("e2e.jobs")
	if err != nil {
		t.Fatal(err)
	}
	inflight, err := meter.Int64UpDownCounter("e2e.inflight")
	if err != nil {
		t.Fatal(err)
	}
	ratio, err := meter.Float64Gauge("e2e.ratio")
	if err != nil {
		t.Fatal(err)
	}
	q1 := attribute.String("queue", "q1")
	jobs.Add(ctx, 3, metric.WithAttributes(q1))
	jobs.Add(ctx, 1, metric.WithAttributes(attribute.String("queue", "q2")))
	inflight.Add(ctx, 5)
	inflight.Add(ctx, -3)
	ratio.Record(ctx, 0.25)

	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	// Periodic exports, not a flush, bring these: nothing has been flushed yet.
	p := rcv.await(t, eq(3), "e2e.jobs", q1)
	rcv.await(t, eq(1), "e2e.jobs", attribute.String("queue", "q2"))
	rcv.await(t, eq(2), "e2e.inflight")
	rcv.await(t, eq(0.25), "e2e.ratio")

	for k, want := range map[string]string{
		"service.name":                "e2e-orchestrator",
		"service.version":             "1.2.3",
		"deployment.environment.name": "e2e",
		"telemetry.sdk.language":      "go",
	} {
		if got := str(p.resource, k); got != want {
			t.Errorf("resource %s = %q, want %q", k, got, want)
		}
	}
	if str(p.resource, "service.instance.id") == "" {
		t.Error("resource has no service.instance.id")
	}
	if p.attrs.Len() != 1 {
		t.Errorf("e2e.jobs attributes = %v, want only queue", p.attrs.AsRaw())
	}

	// Header values decoded from the variable, as sent on every export.
	if got := rcv.headerValues("x-tenant"); len(got) == 0 || slices.ContainsFunc(got, func(v string) bool { return v != "acme" }) {
		t.Errorf("x-tenant header = %q, want acme on every export", got)
	}
	if got := rcv.headerValues("authorization"); len(got) == 0 || got[0] != "Bearer t0ken" {
		t.Errorf("authorization header not received as sent (%d values)", len(got)) // never print a secret
	}
}

func TestShutdownFlushesToCollector(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		addr     func(*otlpReceiver) string
	}{
		{"grpc", func(r *otlpReceiver) string { return r.grpcAddr }},
		{"http/protobuf", func(r *otlpReceiver) string { return r.httpAddr }},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			rcv := startOTLPReceiver(t)
			setOTelEnv(t, map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL": tc.protocol,
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + tc.addr(rcv),
				"OTEL_EXPORTER_OTLP_HEADERS":  "x-tenant=acme",
				"OTEL_METRIC_EXPORT_INTERVAL": "3600000", // no periodic export during the test
				"OTEL_SERVICE_NAME":           "e2e-flush",
			})
			mp := newEnvProvider(t)
			c, err := mp.Meter("e2e").Int64Counter("e2e.last")
			if err != nil {
				t.Fatal(err)
			}
			c.Add(context.Background(), 42)
			shutdownProvider(t, mp)
			// Shutdown returns after the receiver accepted the final export.
			rcv.mustHave(t, 42, "e2e.last")
			if p, _ := rcv.latest("e2e.last"); str(p.resource, "service.name") != "e2e-flush" {
				t.Errorf("service.name = %q", str(p.resource, "service.name"))
			}
			// Shutdown flushes, then the reader exports once more as it stops.
			if got := rcv.headerValues("x-tenant"); !slices.Equal(got, []string{"acme", "acme"}) {
				t.Errorf("x-tenant header = %q, want [acme acme]", got)
			}
		})
	}
}

func TestOrchestratorMetricsReachCollector(t *testing.T) {
	ctx := context.Background()
	db := pgmqtest.New(t)
	const queue, sent = "e2e_jobs", 5
	pgmq := pgmqclient.New(db.Pool)
	if err := pgmq.CreateQueue(ctx, queue); err != nil {
		t.Fatal(err)
	}
	for i := range sent {
		if _, err := pgmq.Send(ctx, queue, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}

	rcv := startOTLPReceiver(t)
	setOTelEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + rcv.grpcAddr,
		"OTEL_METRIC_EXPORT_INTERVAL": "200",
		"OTEL_SERVICE_NAME":           "e2e-orchestrator",
	})
	mp := newEnvProvider(t)
	m, err := otelmetrics.New(append(mp.MetricsOptions(),
		otelmetrics.WithPool("", db.Pool),
		otelmetrics.WithQueueSampling(db.Pool, queue),
	)...)
	if err != nil {
		t.Fatalf("otelmetrics.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })

	run := m.Processor("etl").Start()
	done := m.ProcessorStarted("etl")
	kind := attribute.String(otelmetrics.AttrProcessorKind, "etl")

	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	p := rcv.await(t, eq(2), otelmetrics.MetricProcessorActive, kind)
	if got := str(p.resource, "service.name"); got != "e2e-orchestrator" {
		t.Errorf("service.name = %q", got)
	}
	util := rcv.await(t, func(v float64) bool { return v >= 0 && v <= 1 }, otelmetrics.MetricConnectionUtil)
	if name := str(util.attrs, otelmetrics.AttrPoolName); name == "" || strings.Contains(name, "@") {
		t.Errorf("pool name %q: want a derived name without credentials", name)
	}
	rcv.await(t, eq(sent), otelmetrics.MetricQueueDepth,
		attribute.String(otelmetrics.AttrMessagingSystem, "pgmq"),
		attribute.String(otelmetrics.AttrDestinationName, queue),
		attribute.String(otelmetrics.AttrMessageState, "visible"))

	// Finishing reaches the collector too: the final flush carries zero.
	run.Finish()
	done()
	shutdownProvider(t, mp)
	rcv.mustHave(t, 0, otelmetrics.MetricProcessorActive, kind)
}
