// Command minimal is the least code that wires otelmetrics into a program:
// a pgx pool, an OTLP meter provider configured by OTEL_* variables
// (package otelsetup), the instrumentation, one processor run, and the
// shutdown in its order.
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelsetup"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()

	mp, err := otelsetup.NewMeterProvider(ctx) // OTLP over gRPC, configured by OTEL_* variables
	if err != nil {
		return err // e.g. an OTEL_* value the SDK would have ignored: the error names it
	}
	m, err := otelmetrics.New(append(mp.MetricsOptions(),
		otelmetrics.WithPool("", pool),      // utilization of this pool
		otelmetrics.WithQueueSampling(pool), // depth of every PGMQ queue
	)...)
	if err != nil {
		_ = mp.Shutdown(ctx)
		return err
	}
	defer func() {
		// Bounded: with the Collector down, Shutdown gives up after 5 s.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mp.Shutdown(ctx); err != nil { // first: the last export still observes m's instruments
			log.Print(err)
		}
		_ = m.Close() // then: unregister, release the sampler's connection
	}()

	kind := m.Processor("task_requests") // keep it: Start and Finish are two atomic adds
	r := kind.Start()
	time.Sleep(100 * time.Millisecond) // the work
	r.Finish()
	return nil
}
