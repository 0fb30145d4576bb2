package otelsetup

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
)

// A Provider's exports turn unhealthy after two failures in a row; one
// whose exports succeed stays healthy.
func TestProviderExportHealth(t *testing.T) {
	cleanEnv(t)
	captureHandled(t)
	ctx := context.Background()
	sink := startSink(t)
	endpoint := deadAddr(t)
	p, err := NewMeterProvider(ctx, WithMetricExportInterval(time.Hour),
		WithOTLPMetricGRPCOptions(otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure(),
			otlpmetricgrpc.WithTimeout(200*time.Millisecond), otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	if !p.ExportHealthy() {
		t.Fatal("unhealthy before any export")
	}
	_ = p.ForceFlush(ctx)
	if !p.ExportHealthy() {
		t.Fatal("unhealthy after one failed export")
	}
	_ = p.ForceFlush(ctx)
	if p.ExportHealthy() {
		t.Fatal("healthy after two failed exports in a row")
	}

	good, err := NewMeterProvider(ctx, WithMetricExportInterval(time.Hour),
		WithOTLPMetricGRPCOptions(otlpmetricgrpc.WithEndpoint(sink.addr), otlpmetricgrpc.WithInsecure()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = good.Shutdown(context.Background()) })
	for range 3 {
		if err := good.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !good.ExportHealthy() {
		t.Fatal("unhealthy after successful exports")
	}
	// Without an OTLP exporter there is nothing to be unhealthy about.
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	none, err := NewMeterProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !none.ExportHealthy() {
		t.Fatal("a Provider without OTLP exports is unhealthy")
	}
}
