// Command minimal is the least code that wires otelmetrics into a program:
// an OTLP meter provider configured by OTEL_* variables, a pgx pool, the
// instrumentation, and one processor run.
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

func main() {
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
		otelmetrics.WithPool("", pool),      // utilization of this pool
		otelmetrics.WithQueueSampling(pool), // depth of every PGMQ queue
	)
	if err != nil {
		log.Fatal(err)
	}
	// Shut the provider down before closing m: its last export still
	// observes the instruments. Deferred calls run last-in, first-out.
	defer m.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mp.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	kind := m.Processor("task_requests") // keep it: Start and Finish are two atomic adds
	run := kind.Start()
	time.Sleep(100 * time.Millisecond) // the work
	run.Finish()
}
