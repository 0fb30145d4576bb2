package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// archivedCount is the number of messages in the example queue's archive.
func archivedCount(t *testing.T, db *pgmqtest.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pgmq.a_task_requests`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// With -notify auto on a PGMQ that has insert notifications, the
// orchestrator turns them on and idle processors wake on them: with the
// fallback set to an hour, nothing else could wake them in this test.
func TestIdleProcessorsWakeOnNotifications(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	caps, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := notifyFallback
	notifyFallback = time.Hour
	t.Cleanup(func() { notifyFallback = old })

	cfg := testConfig(db.URL)
	cfg.Processors, cfg.Rate, cfg.Notify = 2, 0, "auto"
	r := start(t, cfg)
	if !caps.Has(pgmqclient.FeatureNotifyInsert) {
		waitFor(t, time.Minute, "the log line saying processors poll", func() bool {
			return strings.Contains(r.out.String(), "no usable insert notifications")
		})
		return
	}
	waitFor(t, time.Minute, "the watcher listening", func() bool {
		return strings.Contains(r.out.String(), "idle processors wait on insert notifications")
	})
	if on, err := c.NotifyInsertEnabled(ctx, "task_requests"); err != nil || !on {
		t.Fatalf("NotifyInsertEnabled = %v, %v; the orchestrator should have turned them on", on, err)
	}
	// Every processor's poll-mode timer (pollInterval) has run out: from
	// here on they wait for the watcher (or the hour-long fallback).
	time.Sleep(2 * pollInterval)
	for i := range 3 {
		if _, err := c.Send(ctx, "task_requests", json.RawMessage(`{"task_id":0}`)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the message archived", func() bool { return archivedCount(t, db) == int64(i+1) })
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// With -notify off the processors poll and the queue's notifications stay
// as they were.
func TestIdleProcessorsPollWhenNotifyOff(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	cfg := testConfig(db.URL)
	cfg.Processors, cfg.Rate, cfg.Notify = 2, 0, "off"
	r := start(t, cfg)
	waitFor(t, time.Minute, "the log line saying processors poll", func() bool {
		return strings.Contains(r.out.String(), "idle processors poll")
	})
	c := pgmqclient.New(db.Pool)
	if _, err := c.Send(ctx, "task_requests", json.RawMessage(`{"task_id":0}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the message archived", func() bool { return archivedCount(t, db) == 1 })
	if on, err := c.NotifyInsertEnabled(ctx, "task_requests"); err != nil || on {
		t.Fatalf("NotifyInsertEnabled = %v, %v; want them left off", on, err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}
