package otelpgmq

import (
	"encoding/json"
	"maps"
	"testing"

	"go.opentelemetry.io/otel/propagation"
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
