package otelsetup

import (
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel/propagation"
)

// NewPropagator returns the propagator named by OTEL_PROPAGATORS
// (autoprop: tracecontext, baggage, b3, b3multi, jaeger, xray, ottrace,
// none, comma-separated); unset, W3C trace context and baggage. An unknown
// name is an error here rather than a silent fallback. Install it with
// otel.SetTextMapPropagator; otelpgmq uses the global one by default.
func NewPropagator() (propagation.TextMapPropagator, error) {
	v := os.Getenv("OTEL_PROPAGATORS")
	if strings.TrimSpace(v) == "" {
		return autoprop.NewTextMapPropagator(), nil
	}
	names := strings.Split(v, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	p, err := autoprop.TextMapPropagator(names...)
	if err != nil {
		return nil, fmt.Errorf("otelsetup: OTEL_PROPAGATORS=%q: %w", v, err)
	}
	return p, nil
}
