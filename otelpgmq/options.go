package otelpgmq

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures NewTracer. A nil Option is ignored.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	createSpans    bool
	emptyReceives  bool
	processParent  bool
	// noMessageBaggage drops the baggage messages carry (WithoutMessageBaggage).
	noMessageBaggage bool
}

func newConfig(opts []Option) config {
	c := config{createSpans: true}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithTracerProvider sets the TracerProvider spans are created with. The
// default is otel.GetTracerProvider(); nil is ignored.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tracerProvider = tp
		}
	})
}

// WithMeterProvider sets the MeterProvider the instruments are created on.
// The default is otel.GetMeterProvider(); nil is ignored.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.meterProvider = mp
		}
	})
}

// WithPropagator sets the propagator that writes the trace context into
// message headers and reads it back. The default is
// otel.GetTextMapPropagator(), the global propagator, which nothing in
// this module sets: the program sets it with otel.SetTextMapPropagator
// (until then it propagates nothing). Nil is ignored.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.propagator = p
		}
	})
}

// WithoutCreateSpans turns off the "create <queue>" span per message of a
// batch send: every message then carries the "send_batch <queue>" span's
// context as its creation context, and that span is PRODUCER instead of
// CLIENT.
func WithoutCreateSpans() Option {
	return optionFunc(func(c *config) { c.createSpans = false })
}

// WithEmptyReceives traces receives that returned no message. By default
// an empty poll makes no span (a consumer polling an idle queue would
// otherwise fill the trace backend); its duration is still measured.
func WithEmptyReceives() Option {
	return optionFunc(func(c *config) { c.emptyReceives = true })
}

// WithProcessParent makes the message's creation context the parent of
// the "process <queue>" span, so producer and processing show as one trace;
// the span then links to the creation context and to the caller's span
// (the ambient context), which it would otherwise have had as parent, as
// the conventions ask. By default the process span keeps the caller's
// context as parent and links to the creation context, as the messaging
// conventions recommend: processing may run long after the send, and one
// trace per send then stays bounded.
func WithProcessParent() Option {
	return optionFunc(func(c *config) { c.processParent = true })
}

// WithoutMessageBaggage drops the baggage messages carry: Process and
// MessageContext then put none into the context (the caller's own baggage
// stays), and receives read none. Baggage in a message was written by
// whoever could send to the queue; it flows on into every call the
// processing makes. By default it is kept, as the propagator (W3C
// baggage by default) asks: senders to a queue are normally part of the
// same application and hold write access to its database; give this
// option when they are not. Baggage never becomes a metric attribute
// either way.
func WithoutMessageBaggage() Option {
	return optionFunc(func(c *config) { c.noMessageBaggage = true })
}
