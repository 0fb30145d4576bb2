package otelpgmq

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// The header scanner reads exactly what decoding into a map and keeping the
// string values would.
func TestHeaderCarrier(t *testing.T) {
	for _, h := range []string{
		``, `null`, `[]`, `"x"`, `{}`, ` { } `,
		`{"traceparent":"00-abc-01"}`,
		`{"a": 1, "traceparent" : "tp", "b": {"c": "d", "e": [1, "]", {"f": "}"}]}, "tracestate": "k=v", "n": null, "t": true}`,
		`{"esc\"key": "va\"l\u00e9", "x-pgmq-group": "g"}`,
		`{"a": [1, 2], "b": "2"}`,
		`{"truncated": "x"`, `{"a" "b"}`, `{"a": "b",}`,
		`{"a": "1", "b": 2, "a": "2"}`, `{"a": "b", "c": {"d": "\q"}}`, `{"a\u0062": "x", "ab": "y"}`,
	} {
		got := headerCarrier(json.RawMessage(h))
		var want propagation.MapCarrier
		var obj map[string]any
		if json.Unmarshal([]byte(h), &obj) == nil {
			for k, v := range obj {
				if s, ok := v.(string); ok {
					if want == nil {
						want = propagation.MapCarrier{}
					}
					want[k] = s
				}
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("headerCarrier(%s) = %v, want %v", h, got, want)
		}
		if want == nil {
			continue
		}
		// The lazy carrier the propagator reads gives the same.
		f := headerFields{h: []byte(h)}
		for k, v := range want {
			if g := f.Get(k); g != v {
				t.Errorf("headerFields(%s).Get(%q) = %q, want %q", h, k, g, v)
			}
		}
		if g := f.Get("absent"); g != "" {
			t.Errorf("headerFields(%s).Get(absent) = %q", h, g)
		}
		keys := f.Keys()
		slices.Sort(keys)
		if wk := slices.Sorted(maps.Keys(want)); !slices.Equal(keys, wk) {
			t.Errorf("headerFields(%s).Keys() = %v, want %v", h, keys, wk)
		}
	}
}

func FuzzHeaderCarrier(f *testing.F) {
	f.Add(`{"traceparent":"00-abc-01","n":[1,{"x":"]"}]}`)
	f.Fuzz(func(t *testing.T, h string) {
		got := headerCarrier(json.RawMessage(h))
		var obj map[string]any
		if json.Unmarshal([]byte(h), &obj) != nil || obj == nil {
			return // invalid JSON: anything but a panic is fine
		}
		for k, v := range obj {
			if s, ok := v.(string); ok && got[k] != s {
				t.Errorf("key %q: got %q, want %q", k, got[k], s)
			}
		}
	})
}

// A propagator writes into pgmqclient.HeaderCarrier exactly what it writes
// into a MapCarrier, and reads it back.
func TestPropagatorIntoHeaderCarrier(t *testing.T) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	ctx := prop.Extract(context.Background(), propagation.MapCarrier{
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate":  "k=v",
		"baggage":     "tenant=a",
	})
	want := propagation.MapCarrier{}
	prop.Inject(ctx, want)
	got := new(pgmqclient.HeaderCarrier)
	prop.Inject(ctx, got)
	if got.Len() != len(want) {
		t.Fatalf("%d keys, want %d (%v)", got.Len(), len(want), want)
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	back := propagation.MapCarrier{}
	prop.Inject(prop.Extract(context.Background(), got), back)
	if !maps.Equal(back, want) {
		t.Errorf("extracted from the carrier and injected again: %v, want %v", back, want)
	}
}
