package otelsetup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Shutdown while a periodic export is in flight: the SDK's periodic
// reader stops its run loop by cancelling the context of that export,
// which then failed with "context canceled" through otel.Handle, though
// nothing was wrong (the final export carries the same values). Repeated,
// bounded in count, against a slow receiver (each export takes 15 ms) with
// a 20 ms interval, so that an export is often in flight when Shutdown
// comes (before the fix: about 3 shutdowns in 4).
func TestShutdownHasNoSpuriousCancelErrors(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	sink.delay = 15 * time.Millisecond
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	handled := captureHandled(t)
	const runs = 40
	for i := range runs {
		p, err := NewMeterProvider(context.Background(), WithMetricExportInterval(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		addOne(t, p, "shutdown.count", 1)
		time.Sleep(time.Duration(20+i%20) * time.Millisecond) // vary the phase against the ticker
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		err = p.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("run %d: Shutdown: %v", i, err)
		}
	}
	var spurious []string
	for _, err := range handled() {
		if errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "context canceled") {
			spurious = append(spurious, err.Error())
		}
	}
	if len(spurious) > 0 {
		t.Fatalf("%d of %d shutdowns reported a cancelled export: %q", len(spurious), runs, spurious[0])
	}
}
