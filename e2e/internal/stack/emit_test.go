package stack_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// replica holds the fixed values one fake orchestrator replica reports,
// under the instrument names, units and attributes of package otelmetrics.
type replica struct {
	instanceID string
	processors map[string]int64 // orchestration.processor.kind -> active
	pool       string
	used, idle int64
	max, min   int64
	waits      int64
	waitTime   float64
	queue      string
	visible    int64
	invisible  int64
	oldestAge  float64
	sent       int64
	errors     map[string]int64 // error.type -> count
}

// startReplica exports r's values over OTLP gRPC with an SDK configured only
// by OTEL_* variables, as an application would be. It shuts the provider
// down in t.Cleanup.
func startReplica(t *testing.T, r replica) {
	t.Helper()
	ctx := context.Background()
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id="+r.instanceID)
	exp, err := otlpmetricgrpc.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), // interval from OTEL_METRIC_EXPORT_INTERVAL
	)
	t.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			t.Errorf("shut down meter provider %s: %v", r.instanceID, err)
		}
	})
	m := mp.Meter("github.com/pgmqotel/pgmqotel/e2e")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	poolAttr := attribute.String("db.client.connection.pool.name", r.pool)
	queueAttrs := []attribute.KeyValue{
		attribute.String("messaging.system", "pgmq"),
		attribute.String("messaging.destination.name", r.queue),
	}

	must(m.Int64ObservableUpDownCounter("orchestration.processor.active", metric.WithUnit("{processor}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for kind, n := range r.processors {
				o.Observe(n, metric.WithAttributes(attribute.String("orchestration.processor.kind", kind)))
			}
			return nil
		})))
	must(m.Int64ObservableUpDownCounter("db.client.connection.count", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.used, metric.WithAttributes(poolAttr, attribute.String("db.client.connection.state", "used")))
			o.Observe(r.idle, metric.WithAttributes(poolAttr, attribute.String("db.client.connection.state", "idle")))
			return nil
		})))
	must(m.Int64ObservableUpDownCounter("db.client.connection.max", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.max, metric.WithAttributes(poolAttr))
			return nil
		})))
	must(m.Int64ObservableUpDownCounter("db.client.connection.idle.min", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.min, metric.WithAttributes(poolAttr))
			return nil
		})))
	must(m.Float64ObservableGauge("db.client.connection.utilization", metric.WithUnit("1"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(float64(r.used)/float64(r.max), metric.WithAttributes(poolAttr))
			return nil
		})))
	must(m.Int64ObservableCounter("pgxpool.acquire.waits", metric.WithUnit("{acquire}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.waits, metric.WithAttributes(poolAttr))
			return nil
		})))
	must(m.Float64ObservableCounter("pgxpool.acquire.wait_time", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(r.waitTime, metric.WithAttributes(poolAttr))
			return nil
		})))
	must(m.Int64ObservableGauge("pgmq.queue.depth", metric.WithUnit("{message}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.visible, metric.WithAttributes(append(queueAttrs, attribute.String("pgmq.message.state", "visible"))...))
			o.Observe(r.invisible, metric.WithAttributes(append(queueAttrs, attribute.String("pgmq.message.state", "invisible"))...))
			return nil
		})))
	must(m.Float64ObservableGauge("pgmq.queue.oldest_message.age", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(r.oldestAge, metric.WithAttributes(queueAttrs...))
			return nil
		})))
	must(m.Int64ObservableCounter("pgmq.queue.sent.messages", metric.WithUnit("{message}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.sent, metric.WithAttributes(queueAttrs...))
			return nil
		})))
	must(m.Int64ObservableCounter("pgmq.sampler.errors", metric.WithUnit("{error}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for typ, n := range r.errors {
				o.Observe(n, metric.WithAttributes(attribute.String("error.type", typ)))
			}
			return nil
		})))
}
