// Package fakeapp plays an instrumented orchestrator replica in end-to-end
// tests: it reports fixed values under the instrument names, units and
// attributes of package otelmetrics, through an OpenTelemetry SDK configured
// only by the OTEL_* environment variables (endpoint, service name, export
// interval), exactly as an application would be.
//
// It stands in for the real instrumentation where a test is about the
// pipeline (collector configuration, Prometheus names, dashboard, rules)
// and must know every value in advance.
package fakeapp

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

// ScopeName is the instrumentation scope of the fake instruments; it shows
// up as the otel_scope_name label in Prometheus.
const ScopeName = "github.com/pgmqotel/pgmqotel/e2e"

// Replica holds the values one replica reports. Maps may be empty; their
// points are then left out, as an application with nothing to report would.
type Replica struct {
	InstanceID string           // service.instance.id (service.name comes from OTEL_SERVICE_NAME)
	Processors map[string]int64 // orchestration.processor.kind -> active processors

	Pool         string    // db.client.connection.pool.name
	Used, Idle   int64     // db.client.connection.count by state
	Max, IdleMin int64     // db.client.connection.max, db.client.connection.idle.min
	AcquireWaits int64     // pgxpool.acquire.waits
	AcquireTimes []float64 // db.client.connection.wait_time: each acquire's time in seconds, recorded at Start

	// The sampled database: server.address, server.port and db.namespace
	// on every queue point and sampler error.
	ServerAddress string
	ServerPort    int
	Database      string

	Queue            string // messaging.destination.name; "" reports no queue points
	Visible          int64  // pgmq.queue.depth, state visible
	Invisible        int64  // pgmq.queue.depth, state invisible
	OldestAgeSeconds float64
	Sent             int64            // pgmq.queue.sent.messages
	SamplerErrors    map[string]int64 // error.type -> pgmq.sampler.errors
}

// Start registers the instruments on a new MeterProvider exporting over
// OTLP gRPC and returns its Shutdown, which flushes a last export. The
// resource comes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, with
// service.instance.id set to r.InstanceID.
func Start(ctx context.Context, r Replica) (shutdown func(context.Context) error, err error) {
	if r.Max <= 0 {
		return nil, fmt.Errorf("fake replica %q: Max must be positive", r.InstanceID)
	}
	exp, err := otlpmetricgrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("fake replica %q: exporter: %w", r.InstanceID, err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.instance.id", r.InstanceID)))
	if err != nil {
		return nil, fmt.Errorf("fake replica %q: resource: %w", r.InstanceID, err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), // interval: OTEL_METRIC_EXPORT_INTERVAL
	)
	if err := register(mp.Meter(ScopeName), r); err != nil {
		return nil, errors.Join(fmt.Errorf("fake replica %q: %w", r.InstanceID, err), mp.Shutdown(ctx))
	}
	return mp.Shutdown, nil
}

func register(m metric.Meter, r Replica) error {
	pool := metric.WithAttributes(attribute.String("db.client.connection.pool.name", r.Pool))
	server := []attribute.KeyValue{
		attribute.String("server.address", r.ServerAddress),
		attribute.Int("server.port", r.ServerPort),
		attribute.String("db.namespace", r.Database),
	}
	queue := append([]attribute.KeyValue{
		attribute.String("messaging.system", "pgmq"),
		attribute.String("messaging.destination.name", r.Queue),
	}, server...)
	state := func(s string) metric.MeasurementOption {
		return metric.WithAttributes(append(queue[:len(queue):len(queue)],
			attribute.String("pgmq.message.state", s), attribute.String("pgmq.depth.method", "count"))...)
	}
	int64s := func(f func(metric.Int64Observer)) metric.Int64Callback {
		return func(_ context.Context, o metric.Int64Observer) error { f(o); return nil }
	}
	float64s := func(f func(metric.Float64Observer)) metric.Float64Callback {
		return func(_ context.Context, o metric.Float64Observer) error { f(o); return nil }
	}
	var errs []error
	add := func(_ any, err error) { errs = append(errs, err) }

	add(m.Int64ObservableUpDownCounter("orchestration.processor.active", metric.WithUnit("{processor}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) {
			for kind, n := range r.Processors {
				o.Observe(n, metric.WithAttributes(attribute.String("orchestration.processor.kind", kind)))
			}
		}))))
	add(m.Int64ObservableUpDownCounter("db.client.connection.count", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) {
			for s, n := range map[string]int64{"used": r.Used, "idle": r.Idle} {
				o.Observe(n, metric.WithAttributes(
					attribute.String("db.client.connection.pool.name", r.Pool),
					attribute.String("db.client.connection.state", s)))
			}
		}))))
	add(m.Int64ObservableUpDownCounter("db.client.connection.max", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) { o.Observe(r.Max, pool) }))))
	add(m.Int64ObservableUpDownCounter("db.client.connection.idle.min", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) { o.Observe(r.IdleMin, pool) }))))
	add(m.Float64ObservableGauge("pgxpool.connection.utilization", metric.WithUnit("1"),
		metric.WithFloat64Callback(float64s(func(o metric.Float64Observer) {
			o.Observe(float64(r.Used)/float64(r.Max), pool)
		}))))
	add(m.Int64ObservableCounter("pgxpool.acquire.waits", metric.WithUnit("{acquire}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) { o.Observe(r.AcquireWaits, pool) }))))
	wait, err := m.Float64Histogram("db.client.connection.wait_time", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(otelmetrics.ConnectionWaitBuckets...))
	add(nil, err)
	for _, v := range r.AcquireTimes {
		wait.Record(context.Background(), v, pool)
	}
	add(m.Int64ObservableGauge("pgmq.queue.depth", metric.WithUnit("{message}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) {
			if r.Queue != "" {
				o.Observe(r.Visible, state("visible"))
				o.Observe(r.Invisible, state("invisible"))
			}
		}))))
	add(m.Float64ObservableGauge("pgmq.queue.oldest_message.age", metric.WithUnit("s"),
		metric.WithFloat64Callback(float64s(func(o metric.Float64Observer) {
			if r.Queue != "" {
				o.Observe(r.OldestAgeSeconds, metric.WithAttributes(queue...))
			}
		}))))
	add(m.Int64ObservableCounter("pgmq.queue.sent.messages", metric.WithUnit("{message}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) {
			if r.Queue != "" {
				o.Observe(r.Sent, metric.WithAttributes(queue...))
			}
		}))))
	add(m.Int64ObservableCounter("pgmq.sampler.errors", metric.WithUnit("{error}"),
		metric.WithInt64Callback(int64s(func(o metric.Int64Observer) {
			for typ, n := range r.SamplerErrors {
				o.Observe(n, metric.WithAttributes(append(server[:len(server):len(server)], attribute.String("error.type", typ))...))
			}
		}))))
	return errors.Join(errs...)
}
