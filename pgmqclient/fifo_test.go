package pgmqclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// sendGroups sends, in this order, a1 b1 a2 d1 b2 a3 (dN has no group) and
// returns their ids by name.
func sendGroups(t *testing.T, ctx context.Context, c *pgmqclient.Client, queue string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, name := range []string{"a1", "b1", "a2", "d1", "b2", "a3"} {
		var opts []pgmqclient.SendOption
		if name[0] != 'd' {
			opts = append(opts, pgmqclient.WithGroup(name[:1]))
		}
		id, err := c.Send(ctx, queue, json.RawMessage(fmt.Sprintf(`{"name":%q}`, name)), opts...)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = id
	}
	return out
}

func names(t *testing.T, msgs []pgmqclient.Message) []string {
	t.Helper()
	out := make([]string, len(msgs))
	for i, m := range msgs {
		var p struct{ Name string }
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out[i] = p.Name
	}
	return out
}

func TestReadGrouped(t *testing.T) {
	ctx, c, _ := setup(t, "fifo")
	sent := sendGroups(t, ctx, c, "fifo")
	got, err := c.ReadGrouped(ctx, "fifo", time.Hour, 2)
	if !caps(t, ctx, c).Has(pgmqclient.FeatureReadGrouped) {
		wantUnsupported(t, err, "read grouped", pgmqclient.FeatureReadGrouped)
		_, err = c.ReadGroupedWithPoll(ctx, "fifo", time.Hour, 2, time.Second, time.Millisecond)
		wantUnsupported(t, err, "read grouped with poll", pgmqclient.FeatureReadGrouped)
		return
	}
	// The batch is filled from the group with the oldest message first
	// (PGMQ does not promise an order within the batch).
	if n := names(t, got); err != nil || !slices.Equal(slices.Sorted(slices.Values(n)), []string{"a1", "a2"}) {
		t.Fatalf("first ReadGrouped = %v, %v; want a1 a2", names(t, got), err)
	}
	// Group a is in flight: a3 waits; b and the default group are served.
	got, err = c.ReadGrouped(ctx, "fifo", time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	n := names(t, got)
	slices.Sort(n)
	if !slices.Equal(n, []string{"b1", "b2", "d1"}) {
		t.Fatalf("second ReadGrouped = %v; want b1 b2 d1, not a3 while a1 and a2 are in flight", n)
	}
	if got, err := c.ReadGroupedWithPoll(ctx, "fifo", time.Hour, 10, time.Second, 50*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("ReadGroupedWithPoll with every group in flight = %v, %v; want nothing", names(t, got), err)
	}
	if _, err := c.DeleteBatch(ctx, "fifo", []int64{sent["a1"], sent["a2"]}); err != nil {
		t.Fatal(err)
	}
	got, err = c.ReadGroupedWithPoll(ctx, "fifo", time.Hour, 10, time.Second, 50*time.Millisecond)
	if err != nil || !slices.Equal(names(t, got), []string{"a3"}) {
		t.Fatalf("ReadGroupedWithPoll after a1 and a2 were done = %v, %v; want a3", names(t, got), err)
	}
}

func TestReadGroupedRR(t *testing.T) {
	ctx, c, _ := setup(t, "rr")
	sendGroups(t, ctx, c, "rr")
	got, err := c.ReadGroupedRR(ctx, "rr", time.Hour, 4)
	if !caps(t, ctx, c).Has(pgmqclient.FeatureReadGroupedRR) {
		wantUnsupported(t, err, "read grouped rr", pgmqclient.FeatureReadGroupedRR)
		_, err = c.ReadGroupedRRWithPoll(ctx, "rr", time.Hour, 2, time.Second, time.Millisecond)
		wantUnsupported(t, err, "read grouped rr with poll", pgmqclient.FeatureReadGroupedRR)
		return
	}
	// First of every group (oldest group first), then the second of each.
	if err != nil || !slices.Equal(names(t, got), []string{"a1", "b1", "d1", "a2"}) {
		t.Fatalf("ReadGroupedRR = %v, %v; want a1 b1 d1 a2", names(t, got), err)
	}
	if got, err := c.ReadGroupedRRWithPoll(ctx, "rr", time.Hour, 10, time.Second, 50*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("ReadGroupedRRWithPoll with every group in flight = %v, %v; want nothing", names(t, got), err)
	}
}

func TestFIFOIndex(t *testing.T) {
	ctx, c, db := setup(t, "idx_a", "idx_b")
	indexes := func(table string) int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'pgmq' AND tablename = $1`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := indexes("q_idx_a")
	err := c.CreateFIFOIndex(ctx, "idx_a")
	if !caps(t, ctx, c).Has(pgmqclient.FeatureFIFOIndex) {
		wantUnsupported(t, err, "create fifo index", pgmqclient.FeatureFIFOIndex)
		wantUnsupported(t, c.CreateFIFOIndexesAll(ctx), "create fifo indexes all", pgmqclient.FeatureFIFOIndex)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateFIFOIndex(ctx, "idx_a"); err != nil {
		t.Fatalf("second CreateFIFOIndex: %v", err)
	}
	if got := indexes("q_idx_a"); got != before+1 {
		t.Fatalf("indexes on q_idx_a: %d, want %d", got, before+1)
	}
	if err := c.CreateFIFOIndexesAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := indexes("q_idx_b"); got != before+1 {
		t.Fatalf("indexes on q_idx_b after CreateFIFOIndexesAll: %d, want %d", got, before+1)
	}
	// Grouped reads still work on an indexed queue.
	sendGroups(t, ctx, c, "idx_a")
	if cs := caps(t, ctx, c); cs.Has(pgmqclient.FeatureReadGroupedRR) {
		if got, err := c.ReadGroupedRR(ctx, "idx_a", time.Hour, 3); err != nil || !slices.Equal(names(t, got), []string{"a1", "b1", "d1"}) {
			t.Fatalf("ReadGroupedRR on an indexed queue = %v, %v", names(t, got), err)
		}
	}
}

func TestGroupedReadsRefusedBeforeSQL(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	checks := map[string]error{}
	_, checks["qty 0"] = c.ReadGrouped(ctx, "q", time.Second, 0)
	_, checks["negative vt"] = c.ReadGroupedRR(ctx, "q", -time.Second, 1)
	_, checks["zero poll"] = c.ReadGroupedWithPoll(ctx, "q", time.Second, 1, 0, time.Millisecond)
	_, checks["zero interval"] = c.ReadGroupedRRWithPoll(ctx, "q", time.Second, 1, time.Second, 0)
	checks["bad name"] = c.CreateFIFOIndex(ctx, "a;b")
	for name, err := range checks {
		if !errors.Is(err, pgmqclient.ErrInvalidArgument) && !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
			t.Errorf("%s: %v, want a refused argument", name, err)
		}
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("%d statements sent for refused arguments", n)
	}
}
