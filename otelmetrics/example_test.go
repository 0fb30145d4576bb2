package otelmetrics_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

// Wiring the instrumentation into a program. The MeterProvider is the
// application's choice: here the global one (otel.GetMeterProvider). The
// application side, package otelsetup, builds one from the OTEL_*
// variables, and its MetricsOptions tell New what New cannot read from a
// MeterProvider: its cardinality limit, export interval and export health.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	m, err := otelmetrics.New(
		otelmetrics.WithPool("", pool),      // name defaults to host:port/db
		otelmetrics.WithQueueSampling(pool), // every PGMQ queue, or name them
	)
	if err != nil {
		log.Fatal(err)
	}
	// Close after the MeterProvider's Shutdown: its final export still
	// observes the instruments.
	defer m.Close()

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
