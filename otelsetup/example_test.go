package otelsetup_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelsetup"
)

// A program's telemetry: both providers and the propagator from the
// OTEL_* variables, the instrumentation on them, and the shutdown in its
// order.
func Example() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()

	mp, err := otelsetup.NewMeterProvider(ctx) // e.g. an *otelsetup.EnvError naming a bad OTEL_* value
	if err != nil {
		return err
	}
	tp, err := otelsetup.NewTracerProvider(ctx)
	if err != nil {
		return errors.Join(err, mp.Shutdown(ctx))
	}
	prop, err := otelsetup.NewPropagator() // OTEL_PROPAGATORS
	if err != nil {
		return errors.Join(err, tp.Shutdown(ctx), mp.Shutdown(ctx))
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)

	// MetricsOptions: the provider, its cardinality limit, export interval
	// and export health.
	m, err := otelmetrics.New(append(mp.MetricsOptions(), otelmetrics.WithPool("", pool))...)
	if err != nil {
		return errors.Join(err, tp.Shutdown(ctx), mp.Shutdown(ctx))
	}
	defer func() {
		// Bounded: with the Collector down, each gives up by the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err,
			tp.Shutdown(ctx), // the spans still queued
			mp.Shutdown(ctx), // the last export, which still observes m's instruments
			m.Close())        // then the instruments
	}()

	// ... the program ...
	return nil
}

// Options in code win over the variables; WithResource applies to both
// providers alike.
func ExampleNewMeterProvider() {
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("deployment.environment.name", "staging"))
	mp, err := otelsetup.NewMeterProvider(ctx,
		otelsetup.WithResource(res),
		otelsetup.WithMetricExportInterval(15*time.Second), // wins over OTEL_METRIC_EXPORT_INTERVAL
	)
	if err != nil {
		log.Fatal(err)
	}
	tp, err := otelsetup.NewTracerProvider(ctx, otelsetup.WithResource(res))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx)); err != nil {
			log.Print(err) // e.g. the final export to a Collector that is down
		}
	}()
	// ... otelmetrics.New(mp.MetricsOptions()...) and the program ...
}

// A TracerProvider of your own that exports through the module's span
// batcher, as NewTracerProvider does, instead of the SDK's
// BatchSpanProcessor: OTEL_BSP_* apply, and spans reach the exporter in
// batches without a goroutine wake-up per span.
func ExampleNewSpanBatcher() {
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx) // OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		log.Fatal(err)
	}
	batcher, err := otelsetup.NewSpanBatcher(exp)
	if err != nil {
		log.Fatal(err) // an *otelsetup.EnvError naming a bad OTEL_BSP_* value
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(batcher))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx) // exports what is queued, then shuts the exporter down
	}()
	_, span := tp.Tracer("example").Start(ctx, "work")
	span.End()
}
