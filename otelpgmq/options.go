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
// otel.GetTextMapPropagator() (set from OTEL_PROPAGATORS by
// otelmetrics.NewTracerProvider); nil is ignored.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.propagator = p
		}
	})
}

// WithoutCreateSpans turns off the "create <queue>" span per message of a
// batch send: every message then carries the "send <queue>" span's context
// as its creation context.
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
// the "process <queue>" span, so producer and processing show as one trace.
// By default the process span keeps the caller's context as parent and
// links to the creation context, as the messaging conventions recommend:
// processing may run long after the send, and one trace per send then
// stays bounded.
func WithProcessParent() Option {
	return optionFunc(func(c *config) { c.processParent = true })
}
