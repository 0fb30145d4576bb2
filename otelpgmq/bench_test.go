package otelpgmq_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// benchTracer is a Tracer on real SDK providers, set up as
// otelsetup.NewTracerProvider sets them up: spans sampled or not, batched
// by otelsetup.NewSpanBatcher to an exporter that discards them (or,
// with sdkBatcher, by the SDK's BatchSpanProcessor, for comparison);
// metrics aggregated.
func benchTracer(b *testing.B, sampled, sdkBatcher bool) (*otelpgmq.Tracer, *otelmetrics.Metrics) {
	b.Helper()
	tp, mp := benchProviders(b, sampled, sdkBatcher)
	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return otelpgmq.NewTracer(otelpgmq.WithTracerProvider(tp), otelpgmq.WithMeterProvider(mp), otelpgmq.WithPropagator(w3c)), m
}

// benchProviders are the tracer and meter providers of benchTracer, shut
// down when b ends.
func benchProviders(b *testing.B, sampled, sdkBatcher bool) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	b.Helper()
	sampler := sdktrace.NeverSample()
	if sampled {
		sampler = sdktrace.AlwaysSample()
	}
	var proc sdktrace.SpanProcessor
	if sdkBatcher {
		proc = sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())
	} else {
		var err error
		if proc, err = otelsetup.NewSpanBatcher(tracetest.NewNoopExporter()); err != nil {
			b.Fatal(err)
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(proc))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tp, mp
}

// benchPool is a pool on db whose sessions commit without waiting for the
// WAL flush (synchronous_commit=off). A flush costs milliseconds with a
// jitter of its own that would drown the microseconds under test; without it
// the call is faster, so the same overhead weighs more: a stricter ratio.
func benchPool(b *testing.B, db *pgmqtest.DB) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// pairs accumulates the times of the plain and the instrumented call.
type pairs struct {
	plain, traced time.Duration
	ratios        []float64 // traced/plain of each iteration
}

// timed runs plain and traced, in that order on even iterations and the
// other way round on odd ones (so neither always follows the other), and
// adds their durations.
func (p *pairs) timed(i int, plain, traced func()) {
	var dp, dt time.Duration
	if i%2 == 1 {
		t0 := time.Now()
		traced()
		t1 := time.Now()
		plain()
		dp, dt = time.Since(t1), t1.Sub(t0)
	} else {
		t0 := time.Now()
		plain()
		t1 := time.Now()
		traced()
		dp, dt = t1.Sub(t0), time.Since(t1)
	}
	p.plain += dp
	p.traced += dt
	p.ratios = append(p.ratios, float64(dt)/float64(dp))
}

// report gives plain_ns/op, traced_ns/op, ratio (of the totals: the
// verdict of scripts/bench.sh) and pair_median_ratio (the median of the
// per-iteration ratios, which a stall of either call moves less).
func (p *pairs) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(p.plain.Nanoseconds())/n, "plain_ns/op")
	b.ReportMetric(float64(p.traced.Nanoseconds())/n, "traced_ns/op")
	b.ReportMetric(float64(p.traced)/float64(p.plain), "ratio")
	slices.Sort(p.ratios)
	b.ReportMetric(p.ratios[len(p.ratios)/2], "pair_median_ratio")
}

// samplings are the cases of the Send and Read benchmarks: the last one,
// the SDK's own batcher, is recorded beside the target, not held to it.
var samplings = []struct {
	name       string
	sampled    bool
	sdkBatcher bool
}{{"sampled", true, false}, {"unsampled", false, false}, {"sampled_sdk_batcher", true, true}}

// BenchmarkInstrumentedSend alternates an uninstrumented and an
// instrumented Send on the same pool, each to its own queue, and reports
// both (plain_ns/op, traced_ns/op) and their ratio: the two see the same
// machine load.
func BenchmarkInstrumentedSend(b *testing.B) {
	for _, s := range samplings {
		b.Run(s.name, func(b *testing.B) {
			tr, _ := benchTracer(b, s.sampled, s.sdkBatcher)
			sendPlain, sendTraced := sendPair(b, tr)
			var p pairs
			for i := 0; b.Loop(); i++ {
				p.timed(i, sendPlain, sendTraced)
			}
			p.report(b)
		})
	}
}

// sendPair returns a plain Send and one traced by tr, on one pool of a
// database of their own, each to its own queue, both already run once
// (connections, the headers check).
func sendPair(b *testing.B, tr pgmqclient.SendTracer) (sendPlain, sendTraced func()) {
	b.Helper()
	db := pgmqtest.New(b)
	ctx := b.Context()
	pool := benchPool(b, db)
	plain, traced := pgmqclient.New(pool), pgmqclient.New(pool, pgmqclient.WithTracer(tr))
	for _, q := range []string{"plain", "traced"} {
		if err := plain.CreateQueue(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	payload := json.RawMessage(`{"order_id":42}`)
	send := func(c *pgmqclient.Client, q string) func() {
		return func() {
			if _, err := c.Send(ctx, q, payload); err != nil {
				b.Fatal(err)
			}
		}
	}
	sendPlain, sendTraced = send(plain, "plain"), send(traced, "traced")
	sendPlain()
	sendTraced()
	return sendPlain, sendTraced
}

// BenchmarkInstrumentedRead is BenchmarkInstrumentedSend for Read: each
// client reads the one message of its queue (sent with trace headers)
// with a zero visibility timeout, so every read finds it again.
func BenchmarkInstrumentedRead(b *testing.B) {
	for _, s := range samplings {
		b.Run(s.name, func(b *testing.B) {
			db := pgmqtest.New(b)
			ctx := b.Context()
			tr, _ := benchTracer(b, s.sampled, s.sdkBatcher)
			pool := benchPool(b, db)
			plain, traced := pgmqclient.New(pool), pgmqclient.New(pool, pgmqclient.WithTracer(tr))
			for _, q := range []string{"plain", "traced"} {
				if err := plain.CreateQueue(ctx, q); err != nil {
					b.Fatal(err)
				}
				if _, err := traced.Send(ctx, q, json.RawMessage(`{"order_id":42}`)); err != nil {
					b.Fatal(err)
				}
			}
			read := func(c *pgmqclient.Client, q string) {
				msgs, err := c.Read(ctx, q, 0, 1)
				if err != nil || len(msgs) != 1 {
					b.Fatalf("read %s: %d messages, %v", q, len(msgs), err)
				}
			}
			read(plain, "plain")
			read(traced, "traced")
			readPlain, readTraced := func() { read(plain, "plain") }, func() { read(traced, "traced") }
			var p pairs
			for i := 0; b.Loop(); i++ {
				p.timed(i, readPlain, readTraced)
			}
			p.report(b)
		})
	}
}

// BenchmarkProcess is the process helper's own cost around a function that
// does nothing: span, processor count and metrics, with the message's
// trace context extracted from its headers. "bare" is the processor count
// alone, for comparison.
func BenchmarkProcess(b *testing.B) {
	msg := pgmqclient.Message{ID: 42, ReadCount: 1, EnqueuedAt: time.Now(),
		Headers: json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tenant":"a"}`)}
	noop := func(context.Context) error { return nil }
	for _, s := range samplings[:2] {
		b.Run(s.name, func(b *testing.B) {
			tr, m := benchTracer(b, s.sampled, false)
			kind := m.Processor("bench")
			ctx := context.Background()
			for b.Loop() {
				if err := tr.Process(ctx, "bench", kind, msg, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("bare", func(b *testing.B) {
		_, m := benchTracer(b, false, false)
		kind := m.Processor("bench")
		ctx := context.Background()
		for b.Loop() {
			run := kind.Start()
			_ = noop(ctx)
			run.Finish()
		}
	})
}

// timedHooks wraps a Tracer's send hooks and adds up the time spent in
// each, so BenchmarkSendHooksInSitu sees what the hooks cost inside the
// real send loop (where the machine's caches hold PostgreSQL's and pgx's
// data, not the tracer's), not only in a loop of their own.
type timedHooks struct {
	tr         pgmqclient.SendTracer
	start, end time.Duration
}

func (h *timedHooks) TraceSendStart(ctx context.Context, c *pgmqclient.Client, d pgmqclient.TraceSendStartData) context.Context {
	t0 := time.Now()
	ctx = h.tr.TraceSendStart(ctx, c, d)
	h.start += time.Since(t0)
	return ctx
}

func (h *timedHooks) TraceSendEnd(ctx context.Context, c *pgmqclient.Client, d pgmqclient.TraceSendEndData) {
	t0 := time.Now()
	h.tr.TraceSendEnd(ctx, c, d)
	h.end += time.Since(t0)
}

// BenchmarkSendHooksInSitu is the send hooks' own time: "loop" calls them
// alone, back to back (caches warm); "in_situ" times them inside
// instrumented Sends alternating with plain ones, as in
// BenchmarkInstrumentedSend, and reports them beside the plain call;
// "sdk_floor" does the same for hooks that make the conventions' telemetry
// with the SDK calls alone (sdkFloor): the least any tracer of a send pays.
func BenchmarkSendHooksInSitu(b *testing.B) {
	for _, s := range samplings[:2] {
		b.Run(s.name+"/loop", func(b *testing.B) {
			tr, _ := benchTracer(b, s.sampled, false)
			ctx := b.Context()
			for b.Loop() {
				c := tr.TraceSendStart(ctx, nil, pgmqclient.TraceSendStartData{Queue: "q", Headers: new(pgmqclient.HeaderCarrier)})
				tr.TraceSendEnd(c, nil, pgmqclient.TraceSendEndData{MsgID: 42, HeadersAdded: true})
			}
		})
		b.Run(s.name+"/in_situ", func(b *testing.B) {
			tr, _ := benchTracer(b, s.sampled, false)
			sendHooksInSitu(b, tr)
		})
		b.Run(s.name+"/sdk_floor", func(b *testing.B) {
			sendHooksInSitu(b, newSDKFloor(b, s.sampled))
		})
	}
}

// sendHooksInSitu alternates plain Sends with Sends traced by tr and
// reports the plain call's time and that of tr's hooks.
func sendHooksInSitu(b *testing.B, tr pgmqclient.SendTracer) {
	hooks := &timedHooks{tr: tr}
	sendPlain, sendTraced := sendPair(b, hooks)
	hooks.start, hooks.end = 0, 0
	var p pairs
	for i := 0; b.Loop(); i++ {
		p.timed(i, sendPlain, sendTraced)
	}
	n := float64(b.N)
	b.ReportMetric(float64(p.plain.Nanoseconds())/n, "plain_ns/op")
	b.ReportMetric(float64(hooks.start.Nanoseconds())/n, "start_ns/op")
	b.ReportMetric(float64(hooks.end.Nanoseconds())/n, "end_ns/op")
	b.ReportMetric(float64((hooks.start+hooks.end).Nanoseconds())/float64(p.plain.Nanoseconds()), "hooks/plain")
}

// sdkFloor makes the send's telemetry with the SDK calls alone, nothing of
// the Tracer's own: a span with the conventions' attributes (the server's
// included) at the start, the context injected, the duration recorded in
// the span's context (so with an exemplar, as the Tracer records it) with
// the span's own start and end times, the message id set, the span ended.
// It is the least a send traced the Tracer's way costs.
type sdkFloor struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	hist   metric.Float64Histogram
	opts   []trace.SpanStartOption
	rec    []metric.RecordOption
}

func newSDKFloor(b *testing.B, sampled bool) *sdkFloor {
	b.Helper()
	tp, mp := benchProviders(b, sampled, false)
	hist, err := mp.Meter("floor").Float64Histogram("messaging.client.operation.duration",
		metric.WithExplicitBucketBoundaries(otelpgmq.DurationBuckets...))
	if err != nil {
		b.Fatal(err)
	}
	attrs := []attribute.KeyValue{semconv.MessagingSystemKey.String("pgmq"), semconv.MessagingDestinationName("traced"),
		semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("send"),
		semconv.ServerAddress("127.0.0.1"), semconv.ServerPort(5432)}
	return &sdkFloor{tracer: tp.Tracer("floor"), prop: w3c, hist: hist,
		opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...)},
		rec:  []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}}
}

type floorState struct {
	context.Context
	span  trace.Span
	start time.Time
}

func (f *sdkFloor) TraceSendStart(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSendStartData) context.Context {
	start := time.Now()
	ctx, span := f.tracer.Start(ctx, "send traced", append(f.opts[:len(f.opts):len(f.opts)], trace.WithTimestamp(start))...)
	f.prop.Inject(ctx, d.Headers)
	return &floorState{ctx, span, start}
}

func (f *sdkFloor) TraceSendEnd(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSendEndData) {
	s := ctx.(*floorState)
	end := time.Now()
	f.hist.Record(ctx, end.Sub(s.start).Seconds(), f.rec...)
	if s.span.IsRecording() {
		s.span.SetAttributes(semconv.MessagingMessageID(strconv.FormatInt(d.MsgID, 10)))
	}
	s.span.End(trace.WithTimestamp(end))
}

// BenchmarkSendOwnShare measures this module's own share of a traced Send:
// it rotates three calls on one pool, a plain Send, a plain Send carrying
// by hand (WithHeaders) the same header the Tracer writes, and a traced
// Send, and reports each (plain_ns/op, header_ns/op, traced_ns/op) and the
// median over iterations of (traced - header) / plain in percent
// (over_header_%): the tracing's cost beyond what PostgreSQL pays to store
// the header. scripts/bench.sh takes the SDK's own calls
// (BenchmarkSendHooksInSitu/*/sdk_floor, same run) off it: what remains is
// the module's share.
func BenchmarkSendOwnShare(b *testing.B) {
	for _, s := range samplings[:2] {
		b.Run(s.name, func(b *testing.B) {
			tr, _ := benchTracer(b, s.sampled, false)
			db := pgmqtest.New(b)
			ctx := b.Context()
			pool := benchPool(b, db)
			plain, traced := pgmqclient.New(pool), pgmqclient.New(pool, pgmqclient.WithTracer(tr))
			for _, q := range []string{"plain", "header", "traced"} {
				if err := plain.CreateQueue(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			payload := json.RawMessage(`{"order_id":42}`)
			if _, err := traced.Send(ctx, "traced", payload); err != nil {
				b.Fatal(err)
			}
			var header json.RawMessage
			if err := pool.QueryRow(ctx, `SELECT headers::text FROM pgmq.q_traced LIMIT 1`).Scan(&header); err != nil || len(header) == 0 {
				b.Fatalf("the traced send's header: %q %v", header, err)
			}
			calls := []func(){
				func() { mustSend(b, plain, "plain", payload) },
				func() { mustSend(b, plain, "header", payload, pgmqclient.WithHeaders(header)) },
				func() { mustSend(b, traced, "traced", payload) },
			}
			var total [3]time.Duration
			var over []float64
			for i := 0; b.Loop(); i++ {
				var d [3]time.Duration
				for k := range 3 {
					j := (i + k) % 3 // each call in each position in turn
					t0 := time.Now()
					calls[j]()
					d[j] = time.Since(t0)
				}
				for j := range d {
					total[j] += d[j]
				}
				over = append(over, 100*float64(d[2]-d[1])/float64(d[0]))
			}
			n := float64(b.N)
			b.ReportMetric(float64(total[0].Nanoseconds())/n, "plain_ns/op")
			b.ReportMetric(float64(total[1].Nanoseconds())/n, "header_ns/op")
			b.ReportMetric(float64(total[2].Nanoseconds())/n, "traced_ns/op")
			slices.Sort(over)
			b.ReportMetric(over[len(over)/2], "over_header_%")
			b.ReportMetric(100*float64(total[2]-total[1])/float64(total[0]), "over_header_totals_%")
		})
	}
}

func mustSend(b *testing.B, c *pgmqclient.Client, q string, payload json.RawMessage, opts ...pgmqclient.SendOption) {
	if _, err := c.Send(b.Context(), q, payload, opts...); err != nil {
		b.Fatal(err)
	}
}
