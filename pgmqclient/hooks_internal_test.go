package pgmqclient

import (
	"encoding/json"
	"maps"
	"testing"
)

// mergeHeaders' hand-written path (no caller headers) gives what a decode
// and encode would, for plain and awkward strings alike.
func TestMergeHeadersNew(t *testing.T) {
	add := map[string]string{
		"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate":   `k="v"\<&>`,
		"baggage":      "é\n\x01",
		"x-PGMQ-group": "never",
	}
	var c HeaderCarrier
	for k, v := range add {
		c.Set(k, v)
	}
	got, ok := mergeHeaders(nil, &c)
	if !ok {
		t.Fatal("nothing added")
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	want := maps.Clone(add)
	delete(want, "x-PGMQ-group")
	if !maps.Equal(back, want) {
		t.Errorf("merged %s, want %v", got, want)
	}
	var reservedOnly HeaderCarrier
	reservedOnly.Set("x-pgmq-group", "g")
	if h, ok := mergeHeaders(nil, &reservedOnly); ok || h != nil {
		t.Errorf("only reserved keys: %s, %v", h, ok)
	}
}
