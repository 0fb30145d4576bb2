package otelpgmq_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelpgmq"
)

// recordingProp is the W3C propagator, recording the longest value it was
// given for each key: what reached its parsers.
type recordingProp struct {
	propagation.TextMapPropagator
	mu      sync.Mutex
	longest map[string]int
}

func newRecordingProp() *recordingProp {
	return &recordingProp{TextMapPropagator: w3c, longest: map[string]int{}}
}

func (p *recordingProp) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return p.TextMapPropagator.Extract(ctx, recordingCarrier{c, p})
}

type recordingCarrier struct {
	propagation.TextMapCarrier
	p *recordingProp
}

func (c recordingCarrier) Get(key string) string {
	v := c.TextMapCarrier.Get(key)
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.longest[key] = max(c.p.longest[key], len(v))
	return v
}

// validTP is a valid traceparent; validSC its span context.
const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var validSC = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
	SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	TraceFlags: trace.FlagsSampled, Remote: true,
})

// hostileHeaders are header values any sender can write, as JSON, and
// whether the message still carries a usable creation context (the valid
// traceparent beside an oversized tracestate or baggage: W3C keeps a
// traceparent whatever becomes of tracestate, and baggage is separate).
func hostileHeaders() []struct {
	name, json string
	link       bool
} {
	members := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "k%d=%s", i, strings.Repeat("v", size))
		}
		return b.String()
	}
	nested := strings.Repeat(`{"a":[`, 500) + `1` + strings.Repeat(`]}`, 500)
	return []struct {
		name, json string
		link       bool
	}{
		{"string", `"traceparent"`, false},
		{"array", `["` + validTP + `"]`, false},
		{"number", `42`, false},
		{"null", `null`, false},
		{"nested traceparent", `{"traceparent": {"traceparent": "` + validTP + `"}}`, false},
		{"deep nesting", `{"deep": ` + nested + `, "n": null}`, false},
		{"invalid traceparent", `{"traceparent": "00-not-a-trace-01"}`, false},
		{"all-zero traceparent", `{"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"}`, false},
		{"5000-entry tracestate alone", `{"tracestate": "` + members(5000, 2) + `"}`, false},
		{"oversized tracestate beside a valid traceparent", `{"traceparent": "` + validTP + `", "tracestate": "` + members(200, 2) + `"}`, true},
		{"200 kB baggage", `{"baggage": "` + members(1, 200<<10) + `"}`, false},
		{"9 kB baggage beside a valid traceparent", `{"traceparent": "` + validTP + `", "baggage": "` + members(1, 9000) + `"}`, true},
		{"65-member baggage", `{"baggage": "` + members(65, 1) + `"}`, false},
		{"huge headers", `{"traceparent": "` + validTP + `", "pad": "` + strings.Repeat("x", otelpgmq.MaxHeadersSize) + `"}`, false},
		{"non-string group", `{"x-pgmq-group": {"g": 1}, "traceparent": 7}`, false},
	}
}

// Messages sent by SQL with hostile headers are received and processed
// like any other: the process span has no parent and no link (unless a
// valid traceparent survives), no baggage reaches fn, the propagator never
// sees a value over its limit, and nothing counts as an error.
func TestHostileHeaders(t *testing.T) {
	rec := newRecordingProp()
	f := setup(t, []string{"h"}, otelpgmq.WithPropagator(rec))
	cases := hostileHeaders()
	want := map[int64]bool{} // message id -> linked
	for _, c := range cases {
		var id int64
		if err := f.db.Pool.QueryRow(f.ctx, `SELECT * FROM pgmq.send('h', '{}'::jsonb, $1::jsonb)`, c.json).Scan(&id); err != nil {
			t.Fatalf("%s: send by SQL: %v", c.name, err)
		}
		want[id] = c.link
	}
	msgs := f.read(t, "h", time.Minute, len(cases)+1)
	if len(msgs) != len(cases) {
		t.Fatalf("read %d messages, want %d", len(msgs), len(cases))
	}
	var withBaggage int
	for i, m := range msgs {
		err := f.tr.Process(f.ctx, "h", nil, m, func(ctx context.Context) error {
			withBaggage += baggage.FromContext(ctx).Len()
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Process: %v", cases[i].name, err)
		}
	}
	for i, p := range f.ended("process h") {
		name := cases[i].name
		if p.Parent().IsValid() || p.Status().Code == codes.Error {
			t.Errorf("%s: process span parent %v, status %v", name, p.Parent(), p.Status())
		}
		switch linked := want[msgs[i].ID]; {
		case linked && (len(p.Links()) != 1 || !p.Links()[0].SpanContext.Equal(validSC)):
			t.Errorf("%s: process links %v, want the valid traceparent's alone (no tracestate)", name, p.Links())
		case !linked && len(p.Links()) != 0:
			t.Errorf("%s: process links %v, want none", name, p.Links())
		}
	}
	if withBaggage != 0 {
		t.Errorf("%d baggage members reached fn, want none", withBaggage)
	}
	if links := len(f.one(t, "read h").Links()); links != 2 {
		t.Errorf("read span links %d, want 2 (the valid traceparents)", links)
	}
	for key, n := range rec.longest {
		limit := otelpgmq.MaxTraceContextSize
		if key == "baggage" {
			limit = otelpgmq.MaxBaggageSize
		}
		if n > limit {
			t.Errorf("the propagator was given a %s of %d bytes, over the limit of %d", key, n, limit)
		}
	}
	got := f.collect(t)
	for name, m := range got {
		for _, set := range attributeSets(m) {
			if _, ok := set.Value(semconv.ErrorTypeKey); ok {
				t.Errorf("%s counts an error: %v", name, set.ToSlice())
			}
		}
	}
	if n := sum(t, got[otelpgmq.MetricConsumedMessages], attribute.String("messaging.destination.name", "h")); n != int64(len(cases)) {
		t.Errorf("consumed.messages = %d, want %d", n, len(cases))
	}
	if pts := histogram(t, got[otelpgmq.MetricProcessDuration]); len(pts) != 1 || pts[0].Count != uint64(len(cases)) {
		t.Errorf("process.duration points %+v, want one with %d processings", pts, len(cases))
	}
}

// Baggage a message carries reaches fn by default and never becomes a
// metric attribute, of this package's instruments or otelmetrics'; with
// WithoutMessageBaggage it is not even read, and the caller's own baggage
// stays.
func TestMessageBaggage(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(map[bool]string{false: "kept", true: "dropped"}[drop], func(t *testing.T) {
			rec := newRecordingProp()
			opts := []otelpgmq.Option{otelpgmq.WithPropagator(rec)}
			if drop {
				opts = append(opts, otelpgmq.WithoutMessageBaggage())
			}
			f := setup(t, []string{"bq"}, opts...)
			const evil = "messaging.destination.name=evil,orchestration.processor.kind=evil,error.type=evil,tenant=evil"
			if _, err := f.db.Pool.Exec(f.ctx, `SELECT * FROM pgmq.send('bq', '{}'::jsonb, $1::jsonb)`,
				`{"traceparent": "`+validTP+`", "baggage": "`+evil+`"}`); err != nil {
				t.Fatal(err)
			}
			m := f.read(t, "bq", time.Minute, 1)[0]
			own, _ := baggage.NewMember("mine", "1")
			callerBag, _ := baggage.New(own)
			ctx := baggage.ContextWithBaggage(f.ctx, callerBag)
			var inFn baggage.Baggage
			kind := f.metrics.Processor("bq")
			if err := f.tr.Process(ctx, "bq", kind, m, func(ctx context.Context) error {
				inFn = baggage.FromContext(ctx)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			byHand := baggage.FromContext(f.tr.MessageContext(ctx, m.Headers))
			switch {
			case !drop && (inFn.Member("tenant").Value() != "evil" || byHand.Member("tenant").Value() != "evil"):
				t.Errorf("baggage in fn %v, by MessageContext %v, want the message's", inFn, byHand)
			case drop && (inFn.Member("tenant").Value() != "" || byHand.Member("tenant").Value() != "" ||
				inFn.Member("mine").Value() != "1" || byHand.Member("mine").Value() != "1"):
				t.Errorf("baggage in fn %v, by MessageContext %v, want the caller's alone", inFn, byHand)
			case drop && rec.longest["baggage"] != 0:
				t.Errorf("with WithoutMessageBaggage the propagator read a baggage of %d bytes", rec.longest["baggage"])
			}
			if p := f.one(t, "process bq"); len(p.Links()) != 1 {
				t.Errorf("process links %v, want the message's context", p.Links())
			}
			// Every instrument of every scope on the provider.
			var rm metricdata.ResourceMetrics
			if err := f.reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			points := 0
			for _, sm := range rm.ScopeMetrics {
				for _, mt := range sm.Metrics {
					for _, set := range attributeSets(mt) {
						points++
						for _, kv := range set.ToSlice() {
							if kv.Key == "tenant" || strings.Contains(kv.Value.String(), "evil") {
								t.Errorf("%s carries the message's baggage: %v", mt.Name, set.ToSlice())
							}
						}
					}
				}
			}
			if points == 0 {
				t.Error("no metric points collected")
			}
		})
	}
}
