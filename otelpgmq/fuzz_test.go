package otelpgmq_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/otelpgmq"
)

// modelContext is what MessageContext should give for headers h, built the
// slow, obvious way: decode the object with encoding/json, keep its string
// values within their limits, and hand them to the propagator in a map.
func modelContext(h []byte) context.Context {
	ctx := context.Background()
	if len(h) > otelpgmq.MaxHeadersSize {
		return ctx
	}
	var obj map[string]any
	if json.Unmarshal(h, &obj) != nil || obj == nil {
		return ctx
	}
	c := propagation.MapCarrier{}
	for k, v := range obj {
		s, ok := v.(string)
		if !ok {
			continue
		}
		limit := otelpgmq.MaxTraceContextSize
		if k == "baggage" {
			limit = otelpgmq.MaxBaggageSize
			if strings.Count(s, ",") >= otelpgmq.MaxBaggageMembers {
				continue
			}
		}
		if len(s) <= limit {
			c[k] = s
		}
	}
	return w3c.Extract(ctx, c)
}

// sortedMembers lists b's members as strings, sorted (a Baggage is a map).
func sortedMembers(b baggage.Baggage) []string {
	var out []string
	for _, m := range b.Members() {
		out = append(out, m.String())
	}
	slices.Sort(out)
	return out
}

// FuzzMessageContext feeds header bytes to the extraction: it never panics,
// never gives more than the limits allow, and for every valid JSON text
// (all PostgreSQL's jsonb can hold) gives exactly what decoding the object
// with encoding/json and extracting from a map gives. The committed seed
// corpus (testdata/fuzz/FuzzMessageContext) holds the hostile shapes of
// TestHostileHeaders that fit in a small file; the larger ones are added
// here.
func FuzzMessageContext(f *testing.F) {
	for _, c := range hostileHeaders() {
		if len(c.json) > 4096 {
			f.Add(c.json)
		}
	}
	tr := otelpgmq.NewTracer(otelpgmq.WithPropagator(w3c))
	f.Fuzz(func(t *testing.T, h string) {
		ctx := tr.MessageContext(context.Background(), json.RawMessage(h))
		sc := trace.SpanContextFromContext(ctx)
		bag := baggage.FromContext(ctx)
		if n := len(sc.TraceState().String()); n > otelpgmq.MaxTraceContextSize {
			t.Errorf("tracestate of %d bytes", n)
		}
		if n := len(bag.String()); n > otelpgmq.MaxBaggageSize || bag.Len() > otelpgmq.MaxBaggageMembers {
			t.Errorf("baggage of %d bytes, %d members", n, bag.Len())
		}
		if !json.Valid([]byte(h)) || !utf8.ValidString(h) {
			return // not something jsonb holds: anything but a panic will do
		}
		want := modelContext([]byte(h))
		if wsc := trace.SpanContextFromContext(want); !sc.Equal(wsc) {
			t.Errorf("span context %v, want %v", sc, wsc)
		}
		if got, wb := sortedMembers(bag), sortedMembers(baggage.FromContext(want)); !slices.Equal(got, wb) {
			t.Errorf("baggage %q, want %q", got, wb)
		}
	})
}
