package otelpgmq

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// headerCarrier reads the string-valued top-level keys of a message's
// headers object. Other values, and headers that are not an object, carry
// nothing.
func headerCarrier(headers json.RawMessage) propagation.MapCarrier {
	if len(headers) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(headers, &obj); err != nil {
		return nil
	}
	out := make(propagation.MapCarrier, len(obj))
	for k, v := range obj {
		if len(v) == 0 || v[0] != '"' {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		}
	}
	return out
}

// creation is what a message's headers say about where it was created.
type creation struct {
	span    trace.SpanContext
	baggage baggage.Baggage
}

// extract reads the creation context of a message from its headers,
// against a background context so that the caller's own span never comes
// back as the message's.
func (t *Tracer) extract(headers json.RawMessage) creation {
	carrier := headerCarrier(headers)
	if len(carrier) == 0 {
		return creation{}
	}
	ctx := t.propagator.Extract(context.Background(), carrier)
	return creation{span: trace.SpanContextFromContext(ctx), baggage: baggage.FromContext(ctx)}
}

// MessageContext returns ctx with the trace context and baggage a message
// carries in its headers: the span context as remote parent (when the
// headers hold a valid one) and the baggage (when they hold any). Use it to
// continue a message's trace by hand; Tracer.Process does this itself.
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
