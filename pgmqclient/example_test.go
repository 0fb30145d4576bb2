package pgmqclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// A worker loop: send, read with a visibility timeout, then delete what was
// handled (or leave it to reappear once the timeout runs out).
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	c := pgmqclient.New(pool)

	if err := c.CreateQueue(ctx, "orders"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Send(ctx, "orders", json.RawMessage(`{"order_id": 42}`),
		pgmqclient.WithHeaders(json.RawMessage(`{"source": "web"}`))); err != nil {
		log.Fatal(err)
	}
	msgs, err := c.ReadWithPoll(ctx, "orders", 30*time.Second, 10, 5*time.Second, 100*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("message %d (read %d times): %s\n", m.ID, m.ReadCount, m.Payload)
		if _, err := c.Delete(ctx, "orders", m.ID); err != nil {
			log.Fatal(err)
		}
	}
}

// A send inside the caller's transaction commits or rolls back with the
// caller's own writes.
func ExampleNew_transaction() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `UPDATE orders SET state = 'paid' WHERE id = 42`); err != nil {
		log.Fatal(err)
	}
	if _, err := pgmqclient.New(tx).Send(ctx, "shipping", json.RawMessage(`{"order_id": 42}`)); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
}

// Errors name the operation and the queue and can be tested with errors.Is.
func ExampleClient_QueueSize() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	n, err := pgmqclient.New(pool).QueueSize(ctx, "orders")
	switch {
	case errors.Is(err, pgmqclient.ErrQueueNotFound):
		fmt.Println("no such queue:", err)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("messages waiting:", n)
	}
}

func ExampleValidateQueueName() {
	for _, name := range []string{"orders", "nc-dash", "a;drop table x"} {
		fmt.Println(pgmqclient.ValidateQueueName(name))
	}
	// Output:
	// <nil>
	// <nil>
	// pgmqclient: invalid queue name "a;drop table x": character ';' at byte 1 is not allowed (PGMQ refuses $, ; and ')
}

func ExampleWithDelay() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	// PGMQ counts whole seconds: 1500ms becomes 2s, never less than asked.
	_, err = pgmqclient.New(pool).SendBatch(ctx, "reminders",
		[]json.RawMessage{[]byte(`{"n":1}`), []byte(`{"n":2}`)},
		pgmqclient.WithDelay(1500*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
}
