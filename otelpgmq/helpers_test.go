package otelpgmq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// fixture is one test's database, instrumented client and telemetry.
type fixture struct {
	ctx     context.Context
	db      *pgmqtest.DB
	tr      *otelpgmq.Tracer
	client  *pgmqclient.Client
	spans   *tracetest.SpanRecorder
	tp      *sdktrace.TracerProvider
	reader  *sdkmetric.ManualReader
	metrics *otelmetrics.Metrics
}

// w3c is the propagator tests use unless they pass their own.
var w3c = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// setup makes a fresh database with the given queues and a Tracer on
// in-memory providers (every span sampled).
func setup(t *testing.T, queues []string, opts ...otelpgmq.Option) *fixture {
	t.Helper()
	t.Parallel()
	f := &fixture{ctx: t.Context(), db: pgmqtest.New(t)}
	f.spans = tracetest.NewSpanRecorder()
	f.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	f.reader = sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	t.Cleanup(func() {
		_ = f.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	base := []otelpgmq.Option{otelpgmq.WithTracerProvider(f.tp), otelpgmq.WithMeterProvider(mp), otelpgmq.WithPropagator(w3c)}
	f.tr = otelpgmq.NewTracer(append(base, opts...)...)
	f.client = pgmqclient.New(f.db.Pool, pgmqclient.WithTracer(f.tr))
	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	f.metrics = m
	for _, q := range queues {
		if err := f.client.CreateQueue(f.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// ended returns the ended spans named name.
func (f *fixture) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range f.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the single ended span named name.
func (f *fixture) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	s := f.ended(name)
	if len(s) != 1 {
		t.Fatalf("%d spans named %q, want 1 (all: %v)", len(s), name, names(f.spans.Ended()))
	}
	return s[0]
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// attr returns a span attribute as a string ("" when absent).
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// headerTraceparent reads the traceparent key of a message's headers.
func headerString(t *testing.T, m pgmqclient.Message, key string) string {
	t.Helper()
	var h map[string]any
	if m.Headers != nil {
		if err := json.Unmarshal(m.Headers, &h); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := h[key].(string)
	return s
}

// traceparent is the W3C header value of sc.
func traceparent(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// read reads up to n messages, failing the test on error.
func (f *fixture) read(t *testing.T, queue string, vt time.Duration, n int) []pgmqclient.Message {
	t.Helper()
	msgs, err := f.client.Read(f.ctx, queue, vt, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// collect gathers the metrics of otelpgmq's scope by name.
func (f *fixture) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelpgmq.ScopeName {
			continue
		}
		if sm.Scope.Version != otelpgmq.Version {
			t.Errorf("scope version %q", sm.Scope.Version)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}
