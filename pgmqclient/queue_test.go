package pgmqclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

func TestCreateListDropQueue(t *testing.T) {
	ctx, c, db := setup(t)
	if err := c.CreateQueue(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateQueue(ctx, "orders"); err != nil {
		t.Fatalf("creating an existing queue again: %v", err)
	}
	if err := c.CreateUnloggedQueue(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
	qs, err := c.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Name != "orders" || qs[1].Name != "scratch" {
		t.Fatalf("ListQueues = %+v, want orders and scratch", qs)
	}
	if qs[0].IsUnlogged || !qs[1].IsUnlogged || qs[0].IsPartitioned || qs[0].CreatedAt.IsZero() {
		t.Errorf("ListQueues flags = %+v", qs)
	}
	var persistence string
	if err := db.Pool.QueryRow(ctx, `SELECT relpersistence::text FROM pg_class WHERE oid = 'pgmq.q_scratch'::regclass`).Scan(&persistence); err != nil {
		t.Fatal(err)
	}
	if persistence != "u" {
		t.Errorf("pgmq.q_scratch relpersistence = %q, want u (unlogged)", persistence)
	}

	dropped, err := c.DropQueue(ctx, "orders")
	if err != nil || !dropped {
		t.Fatalf("DropQueue(orders) = %v, %v; want true", dropped, err)
	}
	dropped, err = c.DropQueue(ctx, "orders")
	if err != nil || dropped {
		t.Fatalf("DropQueue of a dropped queue = %v, %v; want false, nil", dropped, err)
	}
	if _, err := c.QueueSize(ctx, "orders"); !errors.Is(err, pgmqclient.ErrQueueNotFound) {
		t.Errorf("QueueSize after drop: %v, want ErrQueueNotFound", err)
	}
	qs, err = c.ListQueues(ctx)
	if err != nil || len(qs) != 1 || qs[0].Name != "scratch" {
		t.Errorf("ListQueues after drop = %+v, %v", qs, err)
	}
}

func TestListQueuesEmpty(t *testing.T) {
	ctx, c, _ := setup(t)
	qs, err := c.ListQueues(ctx)
	if err != nil || len(qs) != 0 {
		t.Errorf("ListQueues on a fresh database = %+v, %v", qs, err)
	}
}

func TestPurgeQueue(t *testing.T) {
	ctx, c, _ := setup(t, "purged")
	sendN(t, ctx, c, "purged", 7)
	n, err := c.PurgeQueue(ctx, "purged")
	if err != nil || n != 7 {
		t.Fatalf("PurgeQueue = %d, %v; want 7", n, err)
	}
	if got := size(t, ctx, c, "purged"); got != 0 {
		t.Errorf("size after purge = %d", got)
	}
	if _, err := c.PurgeQueue(ctx, "nosuchqueue"); !errors.Is(err, pgmqclient.ErrQueueNotFound) {
		t.Errorf("PurgeQueue of a missing queue: %v, want ErrQueueNotFound", err)
	}
}

// Names are case-insensitive, as in PGMQ: every spelling reaches the
// table named in lower case.
func TestMixedCaseNames(t *testing.T) {
	ctx, c, db := setup(t, "OrderEvents")
	for _, spelling := range []string{"OrderEvents", "orderevents", "ORDEREVENTS"} {
		if _, err := c.Send(ctx, spelling, []byte(`{}`)); err != nil {
			t.Fatalf("send to %q: %v", spelling, err)
		}
	}
	if got := size(t, ctx, c, "oRdErEvEnTs"); got != 3 {
		t.Errorf("size = %d, want 3", got)
	}
	var lower int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.q_orderevents`).Scan(&lower); err != nil || lower != 3 {
		t.Errorf("pgmq.q_orderevents holds %d (%v), want 3", lower, err)
	}
	var quoted *string
	if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('pgmq."q_OrderEvents"')::text`).Scan(&quoted); err != nil || quoted != nil {
		t.Errorf("a mixed-case table exists: %v, %v", quoted, err)
	}
	qs, err := c.ListQueues(ctx)
	if err != nil || len(qs) != 1 || !strings.EqualFold(qs[0].Name, "OrderEvents") {
		t.Errorf("ListQueues = %+v, %v", qs, err)
	}
	m, err := c.Metrics(ctx, "ORDEREVENTS")
	if err != nil || m.Length != 3 {
		t.Errorf("Metrics = %+v, %v", m, err)
	}
	msgs, err := c.Read(ctx, "orderEvents", 0, 10)
	if err != nil || len(msgs) != 3 {
		t.Errorf("Read = %d messages, %v", len(msgs), err)
	}
	// Dropped by the spelling it was created with: releases differ in how
	// they match pgmq.meta rows.
	dropped, err := c.DropQueue(ctx, "OrderEvents")
	if err != nil || !dropped {
		t.Errorf("DropQueue = %v, %v", dropped, err)
	}
}

// The longest valid name works end to end: its derived identifiers fit.
func TestLongestName(t *testing.T) {
	name := strings.Repeat("n", pgmqclient.MaxQueueNameLength)
	ctx, c, _ := setup(t, name)
	ids := sendN(t, ctx, c, name, 2)
	if ok, err := c.Archive(ctx, name, ids[0]); err != nil || !ok {
		t.Fatalf("Archive = %v, %v", ok, err)
	}
	if got := size(t, ctx, c, name); got != 1 {
		t.Errorf("size = %d, want 1", got)
	}
	if m, err := c.Metrics(ctx, name); err != nil || m.TotalMessages != 2 {
		t.Errorf("Metrics = %+v, %v", m, err)
	}
	if ok, err := c.DropQueue(ctx, name); err != nil || !ok {
		t.Errorf("DropQueue = %v, %v", ok, err)
	}
}

// Hostile names are refused before any SQL reaches the database, by every
// method that takes a queue name.
func TestHostileNamesSendNoSQL(t *testing.T) {
	ctx, _, db := setup(t, "victim")
	rec := &countingDB{db: db.Pool}
	c := pgmqclient.New(rec)
	ops := map[string]func(string) error{
		"CreateQueue":         func(q string) error { return c.CreateQueue(ctx, q) },
		"CreateUnloggedQueue": func(q string) error { return c.CreateUnloggedQueue(ctx, q) },
		"DropQueue":           func(q string) error { _, err := c.DropQueue(ctx, q); return err },
		"PurgeQueue":          func(q string) error { _, err := c.PurgeQueue(ctx, q); return err },
		"Send":                func(q string) error { _, err := c.Send(ctx, q, []byte(`{}`)); return err },
		"SendBatch": func(q string) error {
			_, err := c.SendBatch(ctx, q, []json.RawMessage{[]byte(`{}`)})
			return err
		},
		"Read": func(q string) error { _, err := c.Read(ctx, q, 0, 1); return err },
		"ReadWithPoll": func(q string) error {
			_, err := c.ReadWithPoll(ctx, q, 0, 1, time.Second, time.Millisecond)
			return err
		},
		"Pop":           func(q string) error { _, err := c.Pop(ctx, q, 1); return err },
		"Delete":        func(q string) error { _, err := c.Delete(ctx, q, 1); return err },
		"DeleteBatch":   func(q string) error { _, err := c.DeleteBatch(ctx, q, []int64{1}); return err },
		"Archive":       func(q string) error { _, err := c.Archive(ctx, q, 1); return err },
		"ArchiveBatch":  func(q string) error { _, err := c.ArchiveBatch(ctx, q, []int64{1}); return err },
		"SetVisibility": func(q string) error { _, err := c.SetVisibilityTimeout(ctx, q, 1, 0); return err },
		"Metrics":       func(q string) error { _, err := c.Metrics(ctx, q); return err },
		"QueueSize":     func(q string) error { _, err := c.QueueSize(ctx, q); return err },
	}
	hostile := []string{
		"a;drop table x", "x'--", "$1", strings.Repeat("a", 48), "", "名前",
		"a--b", "victim; DROP SCHEMA pgmq CASCADE", `victim" CASCADE; --`, "café", "a\x00b",
	}
	for opName, op := range ops {
		for _, name := range hostile {
			err := op(name)
			if !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
				t.Errorf("%s(%q) = %v, want ErrInvalidQueueName", opName, name, err)
				continue
			}
			var oe *pgmqclient.OpError
			if !errors.As(err, &oe) || oe.Queue != name || oe.Op == "" {
				t.Errorf("%s(%q): want *OpError naming op and queue, got %#v", opName, name, err)
			}
		}
	}
	if n := rec.calls.Load(); n != 0 {
		t.Fatalf("%d statements reached the database for refused names", n)
	}
	// The queue the names tried to attack is intact.
	if _, err := pgmqclient.New(db.Pool).Send(context.Background(), "victim", []byte(`{}`)); err != nil {
		t.Errorf("victim queue damaged: %v", err)
	}
}
