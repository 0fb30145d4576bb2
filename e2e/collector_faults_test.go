package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Collector faults: no collector at all, or one that stops and comes back
// on the same address. The application must not notice, memory must stay
// bounded however long exports fail, exports must resume, and Shutdown
// must keep to its deadline while nobody answers.

// resumeWait bounds the wait for exports to resume after the collector
// comes back. gRPC retries a lost connection with a growing backoff, so
// this is longer than exportWait; it only turns a hang into a failure.
const resumeWait = 3 * time.Minute

// shutdownTimeout is the deadline given to Shutdown with no collector, and
// shutdownSlack what "returns within its timeout" allows on top of it.
const (
	shutdownTimeout = 2 * time.Second
	shutdownSlack   = time.Second
)

// receiverAt starts the Collector's OTLP/gRPC receiver on addr and returns
// it with a function that stops it (idempotent; also run at cleanup).
func receiverAt(t *testing.T, addr string) (*otlpReceiver, func()) {
	t.Helper()
	ctx := context.Background()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = addr
	rcv := &otlpReceiver{sink: new(consumertest.MetricsSink), grpcAddr: addr}
	r, err := f.CreateMetrics(ctx, receivertest.NewNopSettings(f.Type()), cfg, rcv.sink)
	if err != nil {
		t.Fatalf("create OTLP receiver: %v", err)
	}
	if err := r.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatalf("start OTLP receiver on %s: %v", addr, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := r.Shutdown(context.Background()); err != nil {
				t.Errorf("stop OTLP receiver: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return rcv, stop
}

// awaitLong is otlpReceiver.await with resumeWait as its deadline.
func (r *otlpReceiver) awaitLong(t *testing.T, want float64, name string, attrs ...attribute.KeyValue) {
	t.Helper()
	deadline := time.Now().Add(resumeWait)
	for {
		if p, ok := r.latest(name, attrs...); ok && p.value == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v never reached the collector within %v", name, attrs, want, resumeWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exportErrors counts failed exports (through an exporter wrapper, which
// sees every one) and what reaches otel.Handle: each distinct export
// failure, once, and anything else (which the tests report).
type exportErrors struct {
	mu       sync.Mutex
	failed   int // exports that failed
	reported int // *otelsetup.ExportError handed to otel.Handle
	other    []string
}

func watchExportErrors(t *testing.T) *exportErrors {
	t.Helper()
	e := &exportErrors{}
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		var exportErr *otelsetup.ExportError
		if errors.As(err, &exportErr) {
			e.reported++
		} else if len(e.other) < 20 {
			e.other = append(e.other, err.Error())
		}
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	return e
}

// wrap is an otelsetup.WithOTLPMetricExporterWrapper that counts failed
// exports.
func (e *exportErrors) wrap(exp sdkmetric.Exporter) sdkmetric.Exporter {
	return failCounter{Exporter: exp, e: e}
}

type failCounter struct {
	sdkmetric.Exporter
	e *exportErrors
}

func (f failCounter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := f.Exporter.Export(ctx, rm)
	if err != nil {
		f.e.mu.Lock()
		f.e.failed++
		f.e.mu.Unlock()
	}
	return err
}

// unexpected returns the handled errors that were not failed exports.
func (e *exportErrors) unexpected() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.other...)
}

func (e *exportErrors) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

func (e *exportErrors) reports() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reported
}

// awaitFailures waits until n more exports have failed than at since.
func (e *exportErrors) awaitFailures(t *testing.T, since, n int) {
	t.Helper()
	deadline := time.Now().Add(exportWait)
	for e.count() < since+n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d failed exports after %v, want %d", e.count()-since, exportWait, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// app is a small orchestrator: it sends and reads messages through its own
// pool and tracks its processors. Each step checks its own results, so a
// step that fails or hangs shows the application was affected.
type app struct {
	t      *testing.T
	m      *otelmetrics.Metrics
	pgmq   *pgmqclient.Client
	queue  string
	kind   *otelmetrics.ProcessorKind
	steps  int
	queued int64
}

func newApp(t *testing.T, db *pgmqtest.DB, mp *otelsetup.MeterProvider, queue string) *app {
	t.Helper()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(context.Background(), queue); err != nil {
		t.Fatal(err)
	}
	m, err := otelmetrics.New(append(mp.MetricsOptions(),
		otelmetrics.WithPool("app", db.Pool),
		otelmetrics.WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(),
			Depth:         queuedepth.Options{Queues: []string{queue}},
			SampleTimeout: time.Second,
			MinInterval:   -1, // every collection samples: the snapshot is checked against the truth
		}),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &app{t: t, m: m, pgmq: c, queue: queue, kind: m.Processor("worker")}
}

// step sends two messages and processes one, under a processor.
func (a *app) step() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exportWait)
	defer cancel()
	before := a.kind.Active()
	run := a.kind.Start()
	defer run.Finish()
	for range 2 {
		if _, err := a.pgmq.Send(ctx, a.queue, json.RawMessage(fmt.Sprintf(`{"step":%d}`, a.steps))); err != nil {
			a.t.Fatalf("send: %v", err)
		}
	}
	msgs, err := a.pgmq.Read(ctx, a.queue, time.Minute, 1)
	if err != nil || len(msgs) != 1 {
		a.t.Fatalf("read: %v (%d messages)", err, len(msgs))
	}
	if ok, err := a.pgmq.Delete(ctx, a.queue, msgs[0].ID); err != nil || !ok {
		a.t.Fatalf("delete: %v %v", ok, err)
	}
	a.steps++
	a.queued++
	if n := a.kind.Active(); n != before+1 {
		a.t.Fatalf("worker processors during a step = %d, want %d", n, before+1)
	}
}

// checkSnapshot asserts the in-process figures are right: the database is
// fine, whatever the collector does.
func (a *app) checkSnapshot() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exportWait)
	defer cancel()
	s := a.m.Snapshot(ctx)
	if len(s.Databases) != 1 || !s.Databases[0].Healthy || s.Databases[0].Queues[a.queue].Depth == nil || *s.Databases[0].Queues[a.queue].Depth != a.queued {
		a.t.Fatalf("snapshot: %+v, want healthy and %s at depth %d", s.Databases, a.queue, a.queued)
	}
}

func TestCollectorStopsAndRestarts(t *testing.T) {
	db := pgmqtest.New(t)
	addr := freeLoopbackAddr(t)
	errs := watchExportErrors(t)
	setOTelEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
		"OTEL_METRIC_EXPORT_INTERVAL": "100",
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "500",
		"OTEL_METRIC_EXPORT_TIMEOUT":  "1000",
		"OTEL_SERVICE_NAME":           "e2e-collector-faults",
	})
	mp := newEnvProvider(t, otelsetup.WithOTLPMetricExporterWrapper(errs.wrap))
	a := newApp(t, db, mp, "faults")
	kind := attribute.String(otelmetrics.AttrProcessorKind, "worker")
	depth := []attribute.KeyValue{
		attribute.String(otelmetrics.AttrDestinationName, "faults"),
		attribute.String(otelmetrics.AttrMessageState, "visible"),
	}

	// No collector yet: exports fail, the application goes on.
	since := errs.count()
	for range 5 {
		a.step()
	}
	errs.awaitFailures(t, since, 3)
	a.checkSnapshot()
	t.Logf("no collector: %d failed exports, %d application steps", errs.count()-since, a.steps)
	// One failure, reported once however often it repeats.
	if n := errs.reports(); n != 1 {
		t.Errorf("%d export failures reported for %d failed exports, want 1", n, errs.count()-since)
	}

	// The collector appears: exports start with the current figures.
	rcv, stop := receiverAt(t, addr)
	held := []otelmetrics.ProcessorRun{a.kind.Start(), a.kind.Start()}
	rcv.awaitLong(t, 2, otelmetrics.MetricProcessorActive, kind)
	rcv.awaitLong(t, float64(a.queued), otelmetrics.MetricQueueDepth, depth...)

	// It stops: exports fail again, the application goes on.
	stop()
	since = errs.count()
	for range 5 {
		a.step()
	}
	held = append(held, a.kind.Start())
	errs.awaitFailures(t, since, 3)
	a.checkSnapshot()
	t.Logf("collector stopped: %d failed exports, %d application steps", errs.count()-since, a.steps)

	// It comes back on the same address: exports resume, on their own,
	// with the figures of now.
	restarted := time.Now()
	rcv, stop = receiverAt(t, addr)
	rcv.awaitLong(t, 3, otelmetrics.MetricProcessorActive, kind)
	rcv.awaitLong(t, float64(a.queued), otelmetrics.MetricQueueDepth, depth...)
	t.Logf("exports resumed %v after the restart", time.Since(restarted).Round(time.Millisecond))

	if other := errs.unexpected(); len(other) > 0 {
		t.Errorf("unexpected errors handled: %q", other)
	}

	// It goes away for good: Shutdown still returns by its deadline.
	stop()
	for i := range held {
		held[i].Finish()
	}
	a.step()
	if err := shutdownWithin(t, mp); err == nil {
		t.Error("Shutdown reported success with no collector to flush to")
	}
}

// soakDuration is how long exports fail in the memory test: PGMQOTEL_SOAK
// (a Go duration, e.g. 10m for the full run), 15s by default.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("PGMQOTEL_SOAK")
	if v == "" {
		return 15 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("PGMQOTEL_SOAK=%q: want a positive Go duration", v)
	}
	return d
}

// heapGrowthBound is how much the live heap may grow across the soak.
const heapGrowthBound = 8 << 20

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second collects what the first's finalizers freed
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Exports fail for the whole soak (nothing listens), while the application
// works and the metrics are collected and sampled at every interval. The
// live heap at the end is within a fixed bound of the heap at the start:
// failed exports are dropped, not queued up.
func TestCollectorUnreachableMemoryBounded(t *testing.T) {
	soak := soakDuration(t)
	db := pgmqtest.New(t)
	errs := watchExportErrors(t)
	setOTelEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + freeLoopbackAddr(t),
		"OTEL_METRIC_EXPORT_INTERVAL": "100",
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "200",
		"OTEL_METRIC_EXPORT_TIMEOUT":  "1000",
	})
	mp := newEnvProvider(t, otelsetup.WithOTLPMetricExporterWrapper(errs.wrap))
	a := newApp(t, db, mp, "soak")
	// Processors of many kinds come and go, as in a real orchestrator.
	kinds := make([]*otelmetrics.ProcessorKind, 20)
	for i := range kinds {
		kinds[i] = a.m.Processor(fmt.Sprintf("kind_%02d", i))
	}

	// Warm up: first failures, lazy initialisation, pool connections.
	errs.awaitFailures(t, 0, 3)
	a.step()
	start := liveHeap()
	startFailures := errs.count()

	deadline := time.Now().Add(soak)
	maxSteps := int(soak/time.Millisecond) + 1000 // a bound on the loop whatever the clock does
	tick := time.NewTicker(20 * time.Millisecond) // the application's pace, not synchronisation
	defer tick.Stop()
	for i := 0; time.Now().Before(deadline) && i < maxSteps; i++ {
		<-tick.C
		runs := make([]otelmetrics.ProcessorRun, 0, len(kinds))
		for _, k := range kinds {
			runs = append(runs, k.Start())
		}
		if i%5 == 0 {
			a.step()
		}
		if i%50 == 0 {
			a.checkSnapshot()
		}
		for j := range runs {
			runs[j].Finish()
		}
	}
	if n := a.m.ActiveProcessors(); n != 0 {
		t.Fatalf("ActiveProcessors after the soak = %d", n)
	}
	end := liveHeap()
	failed := errs.count() - startFailures
	t.Logf("soak %v: heap %.2f MiB at start, %.2f MiB at end (%+.2f MiB); %d exports attempted, all failed; %d application steps",
		soak, mib(start), mib(end), mib(end)-mib(start), failed, a.steps)
	if end > start+heapGrowthBound {
		t.Fatalf("live heap grew from %.2f MiB to %.2f MiB over %v of failed exports (bound %.0f MiB)",
			mib(start), mib(end), soak, mib(heapGrowthBound))
	}
	if failed < int(soak/time.Second) {
		t.Fatalf("only %d failed exports in %v: exports were not being attempted", failed, soak)
	}

	// What Shutdown itself cancels is not checked.
	if other := errs.unexpected(); len(other) > 0 {
		t.Errorf("unexpected errors handled: %q", other)
	}
	shutdownWithin(t, mp)
}

// shutdownWithin shuts mp down with no collector listening and fails the
// test unless Shutdown returns by its deadline (plus scheduling slack).
func shutdownWithin(t *testing.T, mp *otelsetup.MeterProvider) error {
	t.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := mp.Shutdown(ctx)
	elapsed := time.Since(begin)
	t.Logf("Shutdown with no collector: %v after %v", err, elapsed.Round(time.Millisecond))
	if elapsed > shutdownTimeout+shutdownSlack {
		t.Fatalf("Shutdown took %v with a %v deadline", elapsed, shutdownTimeout)
	}
	return err
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
