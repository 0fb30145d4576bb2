package pgmqreceiver

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

func sendN(t testing.TB, c *pgmqclient.Client, queue string, n int) {
	t.Helper()
	for i := range n {
		b, _ := json.Marshal(map[string]int{"n": i})
		if _, err := c.Send(context.Background(), queue, b); err != nil {
			t.Fatal(err)
		}
	}
}

// The receiver, created by its factory and run by the Collector's scraper
// controller, reports each queue's visible and invisible depth equal to
// count(*), its age and its sent messages, with the database's
// server.address, server.port and db.namespace on every point.
func TestReceiverReportsDepthEqualToCount(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"orders", "idle"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "orders", 5)
	if msgs, err := c.Read(ctx, "orders", time.Hour, 2); err != nil || len(msgs) != 2 {
		t.Fatalf("read: %d, %v", len(msgs), err)
	}
	sink, _ := startReceiver(t, testConfig(db.URL))
	srv := serverAttrs(t, db.URL)
	orders := append([]string{str("messaging.system", "pgmq"), str("messaging.destination.name", "orders")}, srv...)
	got := lastCollection(t, sink, "the depth of orders", func(c collection) bool {
		_, ok := c.value("pgmq.queue.depth", orders...)
		return ok
	})
	v, i := counts(t, db, "orders")
	for state, want := range map[string]int64{"visible": v, "invisible": i} {
		attrs := append(orders, str("pgmq.message.state", state), str("pgmq.depth.method", "count"))
		if got, ok := got.value("pgmq.queue.depth", attrs...); !ok || got != float64(want) {
			t.Fatalf("%s depth = %v (%v), count(*) says %d", state, got, ok, want)
		}
	}
	if sent, ok := got.value("pgmq.queue.sent.messages", orders...); !ok || sent != 5 {
		t.Fatalf("sent = %v (%v), want 5", sent, ok)
	}
	if age, ok := got.value("pgmq.queue.oldest_message.age", orders...); !ok || age <= 0 {
		t.Fatalf("oldest age = %v (%v)", age, ok)
	}
	idle := append([]string{str("messaging.destination.name", "idle"), str("pgmq.message.state", "visible")}, srv...)
	if d, ok := got.value("pgmq.queue.depth", idle...); !ok || d != 0 {
		t.Fatalf("idle depth = %v (%v)", d, ok)
	}
	if _, ok := got["pgmq.sampler.errors"]; ok {
		t.Fatalf("sampler errors on a healthy database: %+v", got["pgmq.sampler.errors"])
	}
}

// A database that cannot be reached costs only its own points: the other
// database's queues are reported at the same scrapes, and the unreachable
// one's failures are counted under its own attributes.
func TestUnreachableDatabaseCostsOnlyItsPoints(t *testing.T) {
	db := pgmqtest.New(t)
	if err := pgmqclient.New(db.Pool).CreateQueue(context.Background(), "orders"); err != nil {
		t.Fatal(err)
	}
	down := closedDSN(t)
	sink, _ := startReceiver(t, testConfig(down, db.URL))
	downAttrs := append(serverAttrs(t, down), str("error.type", "connection"))
	got := lastCollection(t, sink, "a failure of the unreachable database", func(c collection) bool {
		n, ok := c.value("pgmq.sampler.errors", downAttrs...)
		return ok && n >= 2
	})
	if d, ok := got.value("pgmq.queue.depth", append(serverAttrs(t, db.URL), str("messaging.destination.name", "orders"))...); !ok || d != 0 {
		t.Fatalf("the reachable database's depth = %v (%v)", d, ok)
	}
	if _, ok := got.value("pgmq.queue.depth", serverAttrs(t, down)...); ok {
		t.Fatal("a depth point for the unreachable database")
	}
	if _, ok := got.value("pgmq.sampler.errors", serverAttrs(t, db.URL)...); ok {
		t.Fatal("errors counted for the reachable database")
	}
}

// Shutdown releases the election lease the receiver held, so another
// replica takes over at its next scrape rather than after the TTL.
func TestShutdownReleasesTheLease(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	sink, stop := startReceiver(t, testConfig(db.URL))
	lastCollection(t, sink, "a depth", func(c collection) bool { _, ok := c["pgmq.queue.depth"]; return ok })
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	key := queuesampler.ElectionKey(testConfig(db.URL).Databases[0].depth())
	if l, err := queuesampler.LeaseHolder(ctx, conn, key); err != nil || l.IsZero() {
		t.Fatalf("lease while running: %+v, %v", l, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if l, err := queuesampler.LeaseHolder(ctx, conn, key); err != nil || !l.IsZero() {
		t.Fatalf("lease after shutdown: %+v, %v", l, err)
	}
}
