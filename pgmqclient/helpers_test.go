package pgmqclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// Every kind of connection a caller may hold satisfies DB.
var (
	_ pgmqclient.DB = (*pgxpool.Pool)(nil)
	_ pgmqclient.DB = (*pgx.Conn)(nil)
	_ pgmqclient.DB = pgx.Tx(nil)
)

// setup runs the test in parallel on a fresh database holding the given
// queues.
func setup(t *testing.T, queues ...string) (context.Context, *pgmqclient.Client, *pgmqtest.DB) {
	t.Helper()
	t.Parallel()
	db := pgmqtest.New(t)
	ctx := t.Context()
	c := pgmqclient.New(db.Pool)
	for _, q := range queues {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatalf("create queue %q: %v", q, err)
		}
	}
	return ctx, c, db
}

// sendN sends n messages {"n": i} and returns their ids.
func sendN(t *testing.T, ctx context.Context, c *pgmqclient.Client, queue string, n int) []int64 {
	t.Helper()
	ids := make([]int64, 0, n)
	for i := range n {
		id, err := c.Send(ctx, queue, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// size is QueueSize that fails the test on error.
func size(t *testing.T, ctx context.Context, c *pgmqclient.Client, queue string) int64 {
	t.Helper()
	n, err := c.QueueSize(ctx, queue)
	if err != nil {
		t.Fatalf("queue size %q: %v", queue, err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
}

// jsonEqual compares JSON values, ignoring the formatting jsonb normalises.
func jsonEqual(t *testing.T, got, want json.RawMessage) bool {
	t.Helper()
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func ids(msgs []pgmqclient.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// countingDB counts the statements that reach the database.
type countingDB struct {
	db    pgmqclient.DB
	calls atomic.Int64
}

func (d *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	d.calls.Add(1)
	return d.db.Exec(ctx, sql, args...)
}

func (d *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	d.calls.Add(1)
	return d.db.Query(ctx, sql, args...)
}

func (d *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	d.calls.Add(1)
	return d.db.QueryRow(ctx, sql, args...)
}
