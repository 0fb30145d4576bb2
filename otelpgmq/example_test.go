package otelpgmq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Wiring: providers from the OTEL_* variables, a traced client, and the
// processing loop with Process.
func Example() {
	ctx := context.Background()
	mp, err := otelsetup.NewMeterProvider(ctx)
	if err != nil {
		log.Fatal(err)
	}
	tp, err := otelsetup.NewTracerProvider(ctx)
	if err != nil {
		log.Fatal(err)
	}
	prop, err := otelsetup.NewPropagator() // OTEL_PROPAGATORS
	if err != nil {
		log.Fatal(err)
	}
	otel.SetTextMapPropagator(prop)

	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	m, err := otelmetrics.New(append(mp.MetricsOptions(), otelmetrics.WithPool("", pool))...)
	if err != nil {
		log.Fatal(err)
	}
	// Deferred calls run last first: spans flushed, then the last metrics
	// export (it still observes m's instruments), then m closed.
	defer m.Close()
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())

	tr := otelpgmq.NewTracer(otelpgmq.WithTracerProvider(tp), otelpgmq.WithMeterProvider(mp))
	c := pgmqclient.New(pool, pgmqclient.WithTracer(tr))
	kind := m.Processor("task_requests")

	// Producer: the send span's context goes into the message's headers.
	if _, err := c.Send(ctx, "task_requests", json.RawMessage(`{"task":42}`)); err != nil {
		log.Fatal(err)
	}
	// Processor: one call counts, traces and measures the work.
	msgs, err := c.Read(ctx, "task_requests", 30*time.Second, 1)
	if err != nil {
		log.Fatal(err)
	}
	for _, msg := range msgs {
		err := tr.Process(ctx, "task_requests", kind, msg, func(ctx context.Context) error {
			// ... work, with ctx carrying the process span ...
			_, err := c.Archive(ctx, "task_requests", msg.ID)
			return err
		})
		if err != nil {
			log.Print(err)
		}
	}
}

// MessageContext continues a message's trace by hand, for code that does
// not use Process.
func ExampleTracer_MessageContext() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := otelpgmq.NewTracer(otelpgmq.WithTracerProvider(tp), otelpgmq.WithPropagator(w3c))

	headers := json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)
	ctx := tr.MessageContext(context.Background(), headers)
	_, span := tp.Tracer("app").Start(ctx, "handle")
	span.End()
	fmt.Println(rec.Ended()[0].Parent().TraceID())
	// Output: 0af7651916cd43dd8448eb211c80319c
}
