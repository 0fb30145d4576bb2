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
// nothing. It scans the JSON itself rather than decoding it into a map:
// extraction runs for every message received and processed.
func headerCarrier(headers json.RawMessage) propagation.MapCarrier {
	d := headers
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		return nil
	}
	var out propagation.MapCarrier
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return nil
	}
	for i < len(d) {
		key, next, ok := readString(d, i)
		if !ok {
			return nil
		}
		i = skipSpace(d, next)
		if i >= len(d) || d[i] != ':' {
			return nil
		}
		i = skipSpace(d, i+1)
		if i < len(d) && d[i] == '"' {
			var val string
			if val, i, ok = readString(d, i); !ok {
				return nil
			}
			if out == nil {
				out = make(propagation.MapCarrier, 4)
			}
			out[key] = val
		} else if i, ok = skipValue(d, i); !ok {
			return nil
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return nil
		}
		switch d[i] {
		case '}':
			return out
		case ',':
			i = skipSpace(d, i+1)
		default:
			return nil
		}
	}
	return nil
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// readString reads the JSON string starting at d[i] (a quote) and returns
// it decoded and the index after its closing quote.
func readString(d []byte, i int) (string, int, bool) {
	if i >= len(d) || d[i] != '"' {
		return "", i, false
	}
	escaped := false
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			if !escaped {
				return string(d[i+1 : j]), j + 1, true
			}
			var s string
			if err := json.Unmarshal(d[i:j+1], &s); err != nil {
				return "", j + 1, false
			}
			return s, j + 1, true
		}
	}
	return "", len(d), false
}

// skipValue skips the JSON value (not a string) starting at d[i] and
// returns the index after it.
func skipValue(d []byte, i int) (int, bool) {
	depth := 0
	for i < len(d) {
		switch c := d[i]; c {
		case '"':
			_, next, ok := readString(d, i)
			if !ok {
				return i, false
			}
			i = next
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, true
			}
			depth--
		case ',':
			if depth == 0 {
				return i, true
			}
		}
		i++
	}
	return i, depth == 0
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
