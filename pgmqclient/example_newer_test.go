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

// A consumer that sleeps until messages arrive: insert notifications when
// the installed PGMQ has them, polling otherwise.
func ExampleNewPoolWaiter() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	c := pgmqclient.New(pool)

	// Turn notifications on where PGMQ offers them (1.7.0 on).
	err = c.EnableNotifyInsert(ctx, "orders", pgmqclient.DefaultNotifyThrottle)
	if err != nil && !errors.Is(err, pgmqclient.ErrUnsupported) {
		log.Fatal(err)
	}
	w, err := pgmqclient.NewPoolWaiter(ctx, pool, "orders") // holds one connection until Close
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)
	log.Printf("waiting: %v", w)
	for {
		if err := w.Wait(ctx); err != nil {
			log.Fatal(err)
		}
		msgs, err := c.Read(ctx, "orders", 30*time.Second, 10)
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Printf("message %d: %s\n", m.ID, m.Payload)
			if _, err := c.Archive(ctx, "orders", m.ID); err != nil {
				log.Fatal(err)
			}
		}
	}
}

// Use a newer operation where the server has it, and fall back otherwise.
func ExampleClient_Capabilities() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	c := pgmqclient.New(pool)

	caps, err := c.Capabilities(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var msgs []pgmqclient.Message
	if caps.Has(pgmqclient.FeatureReadGroupedRR) {
		msgs, err = c.ReadGroupedRR(ctx, "orders", 30*time.Second, 10)
	} else {
		msgs, err = c.Read(ctx, "orders", 30*time.Second, 10)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(msgs), "messages")

	// Or just call it: a missing function is reported before any SQL.
	_, err = c.SetVisibleAt(ctx, "orders", 1, time.Now().Add(time.Minute))
	var ue *pgmqclient.UnsupportedError
	if errors.As(err, &ue) {
		fmt.Printf("%v needs PGMQ %s\n", ue.Feature, ue.Feature.Since())
	}
}

// Fan a message out to every queue bound to a matching pattern.
func ExampleClient_SendTopic() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	c := pgmqclient.New(pool)

	for queue, pattern := range map[string]string{"audit": "#", "eu_orders": "orders.eu.*"} {
		if err := c.CreateQueue(ctx, queue); err != nil {
			log.Fatal(err)
		}
		if err := c.BindTopic(ctx, pattern, queue); err != nil {
			log.Fatal(err)
		}
	}
	n, err := c.SendTopic(ctx, "orders.eu.created", json.RawMessage(`{"order_id": 42}`),
		pgmqclient.WithGroup("customer-7"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent to", n, "queues")
}
