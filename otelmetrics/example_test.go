package otelmetrics_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

// Wiring the instrumentation into a program: an OTLP meter provider
// configured by the OTEL_* variables, a pool, and processors reported as
// they run.
func Example() {
	ctx := context.Background()
	mp, err := otelmetrics.NewMeterProvider(ctx) // OTLP over gRPC, configured by OTEL_* variables
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	m, err := otelmetrics.New(
		otelmetrics.WithMeterProvider(mp),
		otelmetrics.WithPool("", pool),      // name defaults to host:port/db
		otelmetrics.WithQueueSampling(pool), // every PGMQ queue, or name them
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// Deferred last, so it runs first: the final export still observes
	// the instruments. Bounded: with the collector down it gives up.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mp.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	kind := m.Processor("task_requests") // keep it; Start/Finish cost two atomic adds
	run := kind.Start()
	defer run.Finish()
	// ... work on one message ...
}

// A processor counts as active from Start until Finish. Finish is
// idempotent, and deferring it keeps the count right when the work panics.
func ExampleProcessorKind_Start() {
	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(sdkmetric.NewMeterProvider()))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	kind := m.Processor("payments") // look it up once, outside the hot path
	handle := func(id int) {
		run := kind.Start()
		defer run.Finish()
		fmt.Printf("handling %d: %d active\n", id, kind.Active())
	}
	handle(1)
	handle(2)
	fmt.Println("after:", m.ActiveProcessors())
	// Output:
	// handling 1: 1 active
	// handling 2: 1 active
	// after: 0
}

// ProcessorStarted suits code that hands the end of a run to another
// goroutine or a callback: done is safe to call from anywhere, and only
// its first call counts.
func ExampleMetrics_ProcessorStarted() {
	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(sdkmetric.NewMeterProvider()))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	done := m.ProcessorStarted("emails")
	fmt.Println("while running:", m.ActiveProcessorsByKind())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done() // e.g. when an asynchronous send completes
	}()
	<-finished
	done() // a second call changes nothing
	fmt.Println("after:", m.ActiveProcessorsByKind())
	// Output:
	// while running: map[emails:1]
	// after: map[emails:0]
}

// Snapshot gives the same figures in-process, for a health endpoint or a
// load-balancing decision. Without pools or queue sampling it only reads
// memory.
func ExampleMetrics_Snapshot() {
	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(sdkmetric.NewMeterProvider()))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	run := m.Processor("reports").Start()
	snap := m.Snapshot(context.Background())
	fmt.Println(snap.ActiveProcessors, snap.Processors, len(snap.Databases))
	run.Finish()
	// Output:
	// 1 map[reports:1] 0
}

// NewMeterProvider reads the standard OTEL_* variables; options in code
// override them. Shut the provider down before exiting, within a deadline,
// so the last values reach the collector.
func ExampleNewMeterProvider() {
	// Usually set by the deployment, e.g.
	// OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317
	// OTEL_SERVICE_NAME=orchestrator
	// OTEL_METRIC_EXPORT_INTERVAL=10000
	ctx := context.Background()
	mp, err := otelmetrics.NewMeterProvider(ctx,
		otelmetrics.WithExportInterval(15*time.Second), // wins over OTEL_METRIC_EXPORT_INTERVAL
	)
	if err != nil {
		log.Fatal(err) // e.g. *otelmetrics.EnvError for OTEL_EXPORTER_OTLP_PROTOCOL=http/json
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mp.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// ... run the program ...
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
	batcher, err := otelmetrics.NewSpanBatcher(exp)
	if err != nil {
		log.Fatal(err) // an *otelmetrics.EnvError naming a bad OTEL_BSP_* value
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(batcher))
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx) // exports what is queued, then shuts the exporter down
	}()
	_, span := tp.Tracer("example").Start(ctx, "work")
	span.End()
}
