package main

import (
	"context"

	"go.opentelemetry.io/otel/propagation"

	"github.com/pgmqotel/pgmqotel/otelsetup"
)

// telemetry is what run builds from the OTEL_* variables.
type telemetry struct {
	mp   *otelsetup.MeterProvider
	tp   *otelsetup.TracerProvider
	prop propagation.TextMapPropagator
}

// newTelemetry builds the meter and tracer providers and the propagator,
// from the same OTEL_* variables. When one fails, it shuts down those it
// built.
func newTelemetry(ctx context.Context, cfg Config, providerOpts ...otelsetup.MeterProviderOption) (*telemetry, error) {
	mp, err := otelsetup.NewMeterProvider(ctx, providerOpts...)
	if err != nil {
		return nil, err
	}
	t := &telemetry{mp: mp}
	if t.tp, err = otelsetup.NewTracerProvider(ctx, otelsetup.WithSpanProcessor(cfg.spanProcessor)); err != nil {
		t.abandon()
		return nil, err
	}
	if t.prop, err = otelsetup.NewPropagator(); err != nil {
		t.abandon()
		return nil, err
	}
	return t, nil
}

// abandon shuts down, within shutdownTimeout, the providers of a start
// that failed.
func (t *telemetry) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if t.tp != nil {
		_ = t.tp.Shutdown(ctx)
	}
	_ = t.mp.Shutdown(ctx)
}
