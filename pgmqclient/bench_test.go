package pgmqclient_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// BenchmarkSendReadDelete is one message's round trip through a queue.
func BenchmarkSendReadDelete(b *testing.B) {
	db := pgmqtest.New(b)
	ctx := b.Context()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	payload := json.RawMessage(`{"order_id":42}`)
	for b.Loop() {
		if _, err := c.Send(ctx, "bench", payload); err != nil {
			b.Fatal(err)
		}
		msgs, err := c.Read(ctx, "bench", time.Minute, 1)
		if err != nil || len(msgs) != 1 {
			b.Fatalf("read: %v, %v", msgs, err)
		}
		if _, err := c.Delete(ctx, "bench", msgs[0].ID); err != nil {
			b.Fatal(err)
		}
	}
}
