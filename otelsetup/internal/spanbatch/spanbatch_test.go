package spanbatch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pgmqotel/pgmqotel/otelsetup/internal/spanbatch"
)

// recorder is an exporter that keeps each export's size and can be made
// to block until released.
type recorder struct {
	mu       sync.Mutex
	batches  []int
	spans    int
	shutdown bool
	block    chan struct{} // when non-nil, exports wait on it (or ctx)
}

func (r *recorder) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(spans))
	r.spans += len(spans)
	return nil
}

func (r *recorder) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shutdown = true
	return nil
}

func (r *recorder) state() ([]int, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.batches...), r.spans, r.shutdown
}

// provider returns a tracer provider on p that samples everything, shut
// down at the end of the test.
func provider(t *testing.T, p sdktrace.SpanProcessor, sampler sdktrace.Sampler) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(p))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

func endSpans(tp *sdktrace.TracerProvider, n int) {
	tr := tp.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "op")
		s.End()
	}
}

// waitFor polls cond every 5 ms until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// errorHandler collects what reaches otel.Handle during a test. Tests that
// use it do not run in parallel: the handler is global.
func errorHandler(t *testing.T) func() []error {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), errs...)
	}
}

// A full batch is exported at once; what is left of the queue waits for
// the schedule delay (here an hour) or a flush: three exports for ten spans
// in batches of four, the last of two at ForceFlush.
func TestFullBatchExportsAtOnceRestWaits(t *testing.T) {
	rec := &recorder{}
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: time.Hour, MaxExportBatchSize: 4})
	tp := provider(t, p, sdktrace.AlwaysSample())
	endSpans(tp, 10)
	waitFor(t, "two full batches", func() bool { _, n, _ := rec.state(); return n == 8 })
	if b, _, _ := rec.state(); len(b) != 2 || b[0] != 4 || b[1] != 4 {
		t.Fatalf("exports before the flush = %v, want [4 4]", b)
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, n, _ := rec.state(); n != 10 || len(b) != 3 || b[2] != 2 {
		t.Fatalf("after ForceFlush: exports %v, %d spans; want [4 4 2], 10", b, n)
	}
}

// Spans short of a batch are exported once the schedule delay passes.
func TestScheduleDelayExportsPartialBatch(t *testing.T) {
	rec := &recorder{}
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: 20 * time.Millisecond})
	tp := provider(t, p, sdktrace.AlwaysSample())
	endSpans(tp, 3)
	waitFor(t, "the delayed export", func() bool { _, n, _ := rec.state(); return n == 3 })
}

// Unsampled spans are never queued.
func TestUnsampledSpansAreNotExported(t *testing.T) {
	rec := &recorder{}
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: time.Hour})
	tp := provider(t, p, sdktrace.NeverSample())
	endSpans(tp, 5)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := rec.state(); n != 0 {
		t.Fatalf("%d unsampled spans exported", n)
	}
}

// With the exporter stuck, the queue fills and further spans are dropped
// without blocking the caller; the drops are counted and reported through
// otel.Handle once the exporter moves again.
func TestFullQueueDropsAndReports(t *testing.T) {
	errs := errorHandler(t)
	rec := &recorder{block: make(chan struct{})}
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: time.Hour, MaxQueueSize: 8, MaxExportBatchSize: 4})
	tp := provider(t, p, sdktrace.AlwaysSample())
	// The first batch of 4 goes to the (stuck) exporter, 8 more fill the
	// queue, 5 are dropped.
	endSpans(tp, 4)
	waitFor(t, "the first export to start", func() bool { return p.Queued() == 0 })
	done := make(chan struct{})
	go func() { endSpans(tp, 13); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("OnEnd blocked on a stuck exporter")
	}
	close(rec.block)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, n, _ := rec.state()
	var drop *spanbatch.DropError
	var dropped int
	for _, err := range errs() {
		if errors.As(err, &drop) {
			dropped += drop.Dropped
		}
	}
	if n != 12 || dropped != 5 {
		t.Fatalf("exported %d, reported dropped %d; want 12 and 5 (errors: %v)", n, dropped, errs())
	}
}

// Shutdown exports what is queued, shuts the exporter down, drops spans
// ended afterwards, and returns the same result when called again.
func TestShutdownFlushesAndStops(t *testing.T) {
	rec := &recorder{}
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(p))
	endSpans(tp, 3)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n, shut := rec.state(); n != 3 || !shut {
		t.Fatalf("after Shutdown: %d spans exported, exporter shut down %v; want 3, true", n, shut)
	}
	// A span ending after Shutdown (the provider still hands it over).
	tr := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(p)).Tracer("late")
	_, s := tr.Start(context.Background(), "late")
	s.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := rec.state(); n != 3 {
		t.Fatalf("%d spans exported, want 3: a span ended after Shutdown was exported", n)
	}
	_ = tp.Shutdown(context.Background())
}

// Shutdown with a stuck exporter returns when its context ends, cancels
// the export in progress, still shuts the exporter down, and reports the
// spans it could not export.
func TestShutdownRespectsContext(t *testing.T) {
	errs := errorHandler(t)
	rec := &recorder{block: make(chan struct{})}
	defer close(rec.block)
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: time.Hour, MaxExportBatchSize: 2, ExportTimeout: time.Minute})
	tp := provider(t, p, sdktrace.AlwaysSample())
	endSpans(tp, 2) // a full batch: the goroutine takes it and blocks
	waitFor(t, "the first export to start", func() bool { return p.Queued() == 0 })
	endSpans(tp, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v past a 50ms context", d)
	}
	waitFor(t, "the exporter's Shutdown", func() bool { _, _, shut := rec.state(); return shut })
	// The cancelled export and the last span, whether the final export
	// failed on the deadline or found it passed: nothing is lost silently.
	waitFor(t, "the losses reported", func() bool { return len(errs()) >= 2 })
	if _, n, _ := rec.state(); n != 0 {
		t.Fatalf("%d spans exported through a stuck exporter", n)
	}
}

// ForceFlush waits for an export in progress only as long as its context
// allows.
func TestForceFlushRespectsContext(t *testing.T) {
	errorHandler(t)
	rec := &recorder{block: make(chan struct{})}
	defer close(rec.block)
	p := spanbatch.New(rec, spanbatch.Config{ScheduleDelay: time.Hour, MaxExportBatchSize: 2, ExportTimeout: time.Minute})
	tp := provider(t, p, sdktrace.AlwaysSample())
	endSpans(tp, 2)
	waitFor(t, "the first export to start", func() bool { return p.Queued() == 0 })
	endSpans(tp, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.ForceFlush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ForceFlush = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ForceFlush took %v past a 50ms context", d)
	}
	if n := p.Queued(); n != 1 {
		t.Fatalf("%d spans queued after a ForceFlush that timed out, want the 1 kept for later", n)
	}
}

// Many goroutines ending spans at once: every span is either exported or
// reported dropped, none lost or doubled (run with -race).
func TestConcurrentEndsAccountForEverySpan(t *testing.T) {
	errs := errorHandler(t)
	var exported atomic.Int64
	exp := exporterFunc(func(_ context.Context, s []sdktrace.ReadOnlySpan) error {
		exported.Add(int64(len(s)))
		return nil
	})
	p := spanbatch.New(exp, spanbatch.Config{ScheduleDelay: time.Millisecond, MaxQueueSize: 64, MaxExportBatchSize: 16})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(p))
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			endSpans(tp, each)
		}()
	}
	wg.Wait()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var dropped int64
	var drop *spanbatch.DropError
	for _, e := range errs() {
		if errors.As(e, &drop) {
			dropped += int64(drop.Dropped)
		}
	}
	if got := exported.Load() + dropped; got != workers*each {
		t.Fatalf("exported %d + dropped %d = %d, want %d", exported.Load(), dropped, got, workers*each)
	}
}

type exporterFunc func(context.Context, []sdktrace.ReadOnlySpan) error

func (f exporterFunc) ExportSpans(ctx context.Context, s []sdktrace.ReadOnlySpan) error {
	return f(ctx, s)
}
func (exporterFunc) Shutdown(context.Context) error { return nil }

// BenchmarkEnd is the cost of starting and ending a sampled span through
// this processor and through the SDK's BatchSpanProcessor, both exporting
// to a no-op exporter, with queues large enough that a tight loop drops
// nothing. It shows the cost on the CPU alone; what the wake-ups cost a
// call that waits on the network shows in otelpgmq's bar 6 benchmarks.
func BenchmarkEnd(b *testing.B) {
	for _, c := range []struct {
		name string
		proc func() sdktrace.SpanProcessor
	}{
		{"spanbatch", func() sdktrace.SpanProcessor {
			return spanbatch.New(tracetest.NewNoopExporter(), spanbatch.Config{MaxQueueSize: 1 << 16})
		}},
		{"sdk_batch", func() sdktrace.SpanProcessor {
			return sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter(), sdktrace.WithMaxQueueSize(1<<16))
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(c.proc()))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tr := tp.Tracer("bench")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, s := tr.Start(ctx, "op")
				s.End()
			}
		})
	}
}

// A logger that prints values by reflection (the SDK logs its
// TracerProvider's processors so when the OpenTelemetry logger is verbose)
// reads the processor through String, not through its fields, which its
// goroutine changes meanwhile: no data race under -race.
func TestLoggedByReflection(t *testing.T) {
	p := spanbatch.New(&recorder{}, spanbatch.Config{ScheduleDelay: time.Millisecond, MaxExportBatchSize: 1})
	tp := provider(t, p, sdktrace.AlwaysSample())
	var out strings.Builder
	log := funcr.New(func(prefix, args string) { out.WriteString(args) }, funcr.Options{Verbosity: 10})
	for range 50 {
		endSpans(tp, 1) // the goroutine exports it at once
		log.Info("processor", "p", p)
	}
	if !strings.Contains(out.String(), "MaxQueueSize: 2048") {
		t.Fatalf("logged %q, want the settings", out.String()[:min(200, out.Len())])
	}
}
