package pgmqclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

func TestMetrics(t *testing.T) {
	ctx, c, _ := setup(t, "depth")
	m, err := c.Metrics(ctx, "depth")
	if err != nil {
		t.Fatal(err)
	}
	if m.Queue != "depth" || m.Length != 0 || m.VisibleLength != 0 || m.TotalMessages != 0 ||
		m.NewestAge != 0 || m.OldestAge != 0 || m.ScrapeTime.IsZero() {
		t.Errorf("Metrics of an empty queue = %+v", m)
	}
	sent := sendN(t, ctx, c, "depth", 10)
	if _, err := c.Read(ctx, "depth", time.Hour, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "depth", sent[9]); err != nil {
		t.Fatal(err)
	}
	m, err = c.Metrics(ctx, "depth")
	if err != nil {
		t.Fatal(err)
	}
	if m.Length != 9 || m.VisibleLength != 7 || m.TotalMessages != 10 {
		t.Errorf("Metrics = %+v; want length 9, visible 7, 10 ever sent", m)
	}
	if m.OldestAge < m.NewestAge || m.NewestAge < 0 {
		t.Errorf("ages: oldest %v, newest %v", m.OldestAge, m.NewestAge)
	}
	if n := size(t, ctx, c, "depth"); n != m.Length {
		t.Errorf("QueueSize %d != Metrics length %d", n, m.Length)
	}
}

func TestMetricsAll(t *testing.T) {
	ctx, c, _ := setup(t, "b_queue", "a_queue", "Empty")
	sendN(t, ctx, c, "a_queue", 3)
	sendN(t, ctx, c, "b_queue", 5)
	all, err := c.MetricsAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("MetricsAll = %+v, want 3 queues", all)
	}
	want := map[string]int64{"a_queue": 3, "b_queue": 5, "empty": 0}
	for i, m := range all {
		if i > 0 && all[i-1].Queue > m.Queue {
			t.Errorf("MetricsAll not ordered by name: %q before %q", all[i-1].Queue, m.Queue)
		}
		n, ok := want[strings.ToLower(m.Queue)]
		if !ok || m.Length != n || m.TotalMessages != n || m.VisibleLength != n {
			t.Errorf("metrics for %q = %+v, want %d messages", m.Queue, m, n)
		}
	}
	c2 := pgmqclient.New(pgmqtest.New(t).Pool)
	if all, err := c2.MetricsAll(ctx); err != nil || len(all) != 0 {
		t.Errorf("MetricsAll without queues = %+v, %v", all, err)
	}
}

func TestQueueSizeMissingQueue(t *testing.T) {
	ctx, c, _ := setup(t)
	n, err := c.QueueSize(ctx, "nosuchqueue")
	if !errors.Is(err, pgmqclient.ErrQueueNotFound) {
		t.Fatalf("QueueSize of a missing queue = %d, %v; want ErrQueueNotFound", n, err)
	}
	if n != 0 {
		t.Errorf("size with an error = %d, want 0", n)
	}
	if msg := err.Error(); !strings.Contains(msg, `"nosuchqueue"`) || !strings.Contains(msg, "not found") || !strings.Contains(msg, "queue size") {
		t.Errorf("error %q should name the operation and the queue and say it was not found", msg)
	}
	var oe *pgmqclient.OpError
	if !errors.As(err, &oe) || oe.Queue != "nosuchqueue" || oe.Op != "queue size" {
		t.Errorf("want *OpError{queue size, nosuchqueue}, got %#v", err)
	}
	// The server's catalog said so before any count: no PostgreSQL error.
}

func TestQueueSizeUnreachableDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused.
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c := pgmqclient.New(pool)
	n, err := c.QueueSize(ctx, "orders")
	if err == nil {
		t.Fatalf("QueueSize without a database = %d, nil; want an error", n)
	}
	if n != 0 || errors.Is(err, pgmqclient.ErrQueueNotFound) {
		t.Errorf("QueueSize = %d, %v; want 0 and a connection error", n, err)
	}
	var oe *pgmqclient.OpError
	if !errors.As(err, &oe) || oe.Queue != "orders" {
		t.Errorf("want *OpError naming the queue, got %#v", err)
	}
	if _, err := c.Metrics(ctx, "orders"); err == nil {
		t.Error("Metrics without a database succeeded")
	}
}

// QueueSize counts exactly, visible or not.
func TestQueueSizeCountsInvisible(t *testing.T) {
	ctx, c, _ := setup(t, "sz")
	sendN(t, ctx, c, "sz", 4)
	if _, err := c.Send(ctx, "sz", []byte(`{}`), pgmqclient.WithDelay(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(ctx, "sz", time.Hour, 2); err != nil {
		t.Fatal(err)
	}
	if n := size(t, ctx, c, "sz"); n != 5 {
		t.Errorf("QueueSize = %d, want 5", n)
	}
}
