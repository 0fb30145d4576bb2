package pgmqclient_test

import (
	"slices"
	"testing"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// A HeaderCarrier keeps keys in the order first set, replaces the value of
// a key set again, and is ready as a zero value.
func TestHeaderCarrier(t *testing.T) {
	var h pgmqclient.HeaderCarrier
	if h.Len() != 0 || h.Get("traceparent") != "" || len(h.Keys()) != 0 {
		t.Fatalf("zero value not empty: %d keys", h.Len())
	}
	h.Set("traceparent", "tp1")
	h.Set("tracestate", "ts")
	h.Set("baggage", "b")
	h.Set("traceparent", "tp2")
	if got, want := h.Keys(), []string{"traceparent", "tracestate", "baggage"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	if h.Len() != 3 {
		t.Errorf("Len() = %d, want 3", h.Len())
	}
	for k, want := range map[string]string{"traceparent": "tp2", "tracestate": "ts", "baggage": "b", "Traceparent": ""} {
		if got := h.Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
}

// Setting two keys, what a W3C propagator writes, allocates nothing.
func TestHeaderCarrierTwoKeysNoAlloc(t *testing.T) {
	h := new(pgmqclient.HeaderCarrier)
	if n := testing.AllocsPerRun(100, func() {
		*h = pgmqclient.HeaderCarrier{}
		h.Set("traceparent", "tp")
		h.Set("tracestate", "ts")
	}); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
