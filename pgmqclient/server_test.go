package pgmqclient_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Server reads the configured host and port from each kind of DB, and the
// messages a client reads carry it; a DB whose address cannot be known
// gives none.
func TestClientServer(t *testing.T) {
	ctx, _, db := setup(t, "srv")
	cfg := db.Pool.Config().ConnConfig
	want := pgmqclient.ServerAddress{Host: cfg.Host, Port: cfg.Port}
	if want.Host == "" || want.Port == 0 {
		t.Fatalf("test database config has no host and port: %+v", want)
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	pooled, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.Release()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	for name, d := range map[string]pgmqclient.DB{"pool": db.Pool, "conn": conn, "pooled conn": pooled, "tx": tx} {
		if got, ok := pgmqclient.New(d).Server(); !ok || got != want {
			t.Errorf("%s: Server() = %+v, %v, want %+v", name, got, ok, want)
		}
	}

	c := pgmqclient.New(db.Pool)
	if _, err := c.Send(ctx, "srv", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Read(ctx, "srv", time.Minute, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read: %d messages, %v", len(msgs), err)
	}
	if got, ok := msgs[0].Server(); !ok || got != want {
		t.Errorf("message Server() = %+v, %v, want %+v", got, ok, want)
	}
	if _, ok := (pgmqclient.Message{ID: 1}).Server(); ok {
		t.Error("a message made by hand has a server")
	}

	// Two hosts: which one a call reaches is not known.
	multi, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:5432,127.0.0.2:5433/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	mp, err := pgxpool.NewWithConfig(ctx, multi) // connects lazily
	if err != nil {
		t.Fatal(err)
	}
	defer mp.Close()
	if got, ok := pgmqclient.New(mp).Server(); ok {
		t.Errorf("two hosts: Server() = %+v, want unknown", got)
	}
	// sslmode=prefer lists a TLS and a plain attempt at the same address:
	// still one server.
	prefer, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:5432/postgres?sslmode=prefer")
	if err != nil {
		t.Fatal(err)
	}
	pp, err := pgxpool.NewWithConfig(ctx, prefer)
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	if got, ok := pgmqclient.New(pp).Server(); !ok || got != (pgmqclient.ServerAddress{Host: "127.0.0.1", Port: 5432}) {
		t.Errorf("sslmode=prefer: Server() = %+v, %v", got, ok)
	}
}

// callerHook records the caller's headers the send hooks are given.
type callerHook struct {
	headerHook
	single []json.RawMessage
	batch  [][]json.RawMessage
}

func (h *callerHook) TraceSendStart(ctx context.Context, c *pgmqclient.Client, d pgmqclient.TraceSendStartData) context.Context {
	h.single = append(h.single, d.CallerHeaders)
	return h.headerHook.TraceSendStart(ctx, c, d)
}

func (h *callerHook) TraceSendBatchStart(ctx context.Context, c *pgmqclient.Client, d pgmqclient.TraceSendBatchStartData) context.Context {
	h.batch = append(h.batch, d.CallerHeaders)
	return h.headerHook.TraceSendBatchStart(ctx, c, d)
}

// The send hooks see the headers the caller gave, WithGroup's key included,
// before anything is merged.
func TestHooksSeeCallerHeaders(t *testing.T) {
	ctx, _, db := setup(t, "ch")
	h := &callerHook{headerHook: headerHook{add: map[string]string{"traceparent": "tp"}}}
	c := pgmqclient.New(db.Pool, pgmqclient.WithTracer(h))
	if _, err := c.Send(ctx, "ch", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "ch", json.RawMessage(`{}`), pgmqclient.WithHeaders(json.RawMessage(`{"traceparent":"mine"}`))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "ch", json.RawMessage(`{}`), pgmqclient.WithGroup("g")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendBatch(ctx, "ch", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`2`)},
		pgmqclient.WithBatchHeaders([]json.RawMessage{nil, json.RawMessage(`{"a":"b"}`)})); err != nil {
		t.Fatal(err)
	}
	if len(h.single) != 3 || h.single[0] != nil || string(h.single[1]) != `{"traceparent":"mine"}` ||
		!jsonEqual(t, h.single[2], json.RawMessage(`{"x-pgmq-group":"g"}`)) {
		t.Errorf("send hooks saw caller headers %q", h.single)
	}
	if len(h.batch) != 1 || len(h.batch[0]) != 2 || h.batch[0][0] != nil || string(h.batch[0][1]) != `{"a":"b"}` {
		t.Errorf("batch hook saw caller headers %q", h.batch)
	}
}
