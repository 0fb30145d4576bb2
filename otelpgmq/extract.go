package otelpgmq

import (
	"context"
	"encoding/json"
	"strings"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// Limits on what extraction takes from a message's headers, which any
// producer that can send to the queue writes. A value over its limit is
// read as absent (no error is counted or logged: the message is processed
// as one without that key), so the propagator never parses it. The numbers
// come from the W3C specifications the default propagators implement.
const (
	// MaxHeadersSize is the largest headers object, in bytes of its JSON,
	// read for a creation context; larger headers carry none. It bounds
	// the scan per message and sits far above what the keys below can
	// take together at their limits (about 9 kB), leaving room for the
	// application's own keys.
	MaxHeadersSize = 64 << 10
	// MaxTraceContextSize is the largest value of a trace-context key
	// (traceparent, tracestate, or another propagator's key), in bytes:
	// W3C Trace Context asks vendors to propagate at least 512 characters
	// of tracestate and lets them drop more; a version-00 traceparent is
	// 55 characters. A tracestate over it is dropped, and a valid
	// traceparent still counts (W3C: a tracestate that cannot be parsed
	// does not affect the traceparent).
	MaxTraceContextSize = 512
	// MaxBaggageSize and MaxBaggageMembers bound the W3C baggage value, in
	// bytes and list-members: W3C Baggage's limits (8192 bytes, 64
	// members), which OpenTelemetry Go's parser also enforces, with a
	// logged error, past them.
	MaxBaggageSize    = 8192
	MaxBaggageMembers = 64
)

// baggageKey is the W3C baggage header.
const baggageKey = "baggage"

// limitValue returns v, the value of key, or "" when it is over key's
// limit.
func limitValue(key, v string) string {
	if key == baggageKey {
		if len(v) > MaxBaggageSize || strings.Count(v, ",") >= MaxBaggageMembers {
			return ""
		}
		return v
	}
	if len(v) > MaxTraceContextSize {
		return ""
	}
	return v
}

// creation is what a message's headers say about where it was created.
type creation struct {
	span    trace.SpanContext
	baggage baggage.Baggage
}

// extract reads the creation context of a message from its headers,
// against a background context so that the caller's own span never comes
// back as the message's. Headers over MaxHeadersSize, and values over
// their limits, are read as absent; with WithoutMessageBaggage the baggage
// is dropped.
func (t *Tracer) extract(headers json.RawMessage) creation {
	if len(headers) > MaxHeadersSize {
		return creation{}
	}
	// Check the headers once (and that they carry anything); the
	// propagator then reads only the keys it asks for.
	n := 0
	if !scanHeaders(headers, func(k, v []byte) bool {
		n++
		return validString(k) && validString(v)
	}) || n == 0 {
		return creation{}
	}
	ctx := t.propagator.Extract(context.Background(), headerFields{h: headers, noBaggage: t.cfg.noMessageBaggage})
	c := creation{span: trace.SpanContextFromContext(ctx)}
	if !t.cfg.noMessageBaggage {
		c.baggage = baggage.FromContext(ctx)
	}
	return c
}

// MessageContext returns ctx with the trace context and baggage a message
// carries in its headers: the span context as remote parent (when the
// headers hold a valid one) and the baggage (when they hold any, unless
// WithoutMessageBaggage), within the limits above. Use it to continue a
// message's trace by hand; Tracer.Process does this itself.
func (t *Tracer) MessageContext(ctx context.Context, headers json.RawMessage) context.Context {
	c := t.extract(headers)
	if c.span.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, c.span)
	}
	if c.baggage.Len() > 0 {
		ctx = baggage.ContextWithBaggage(ctx, c.baggage)
	}
	return ctx
}
