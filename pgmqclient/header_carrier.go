package pgmqclient

// HeaderCarrier collects the string keys a tracing hook adds to a
// message's headers (see TraceSendStartData.Headers). Its methods are those
// of OpenTelemetry's propagation.TextMapCarrier, so a propagator injects
// into it directly; the package itself depends on no telemetry library.
//
// Keys keep the order they were first set in, which is the order they are
// written in. A key set again keeps its place and takes the new value. Keys
// are case-sensitive, like JSON's. The zero value is empty and ready; a
// HeaderCarrier is not safe for concurrent use.
type HeaderCarrier struct {
	kv   []string  // key, value, key, value, ...
	room [4]string // kv's first backing array: two keys without an allocation
}

// Get returns the value set for key, "" when there is none.
func (h *HeaderCarrier) Get(key string) string {
	for i := 0; i < len(h.kv); i += 2 {
		if h.kv[i] == key {
			return h.kv[i+1]
		}
	}
	return ""
}

// Set sets key to value.
func (h *HeaderCarrier) Set(key, value string) {
	for i := 0; i < len(h.kv); i += 2 {
		if h.kv[i] == key {
			h.kv[i+1] = value
			return
		}
	}
	if h.kv == nil {
		h.kv = h.room[:0]
	}
	h.kv = append(h.kv, key, value)
}

// Keys returns the keys set, in the order they were first set.
func (h *HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h.kv)/2)
	for i := 0; i < len(h.kv); i += 2 {
		keys = append(keys, h.kv[i])
	}
	return keys
}

// Len returns the number of keys set.
func (h *HeaderCarrier) Len() int { return len(h.kv) / 2 }

// all calls yield with each key and value in order.
func (h *HeaderCarrier) all(yield func(key, value string)) {
	for i := 0; i < len(h.kv); i += 2 {
		yield(h.kv[i], h.kv[i+1])
	}
}
