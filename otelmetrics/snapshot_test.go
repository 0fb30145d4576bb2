package otelmetrics

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// A queue the sampler could not sample shows no depth in the snapshot:
// null beside its error, never 0, as the exported metric leaves it out.
// Before, /healthz printed "depth":0 next to the error.
func TestSnapshotShowsNoDepthForAQueueNotSampled(t *testing.T) {
	db := pgmqtest.New(t)
	c := pgmqclient.New(db.Pool)
	ctx := context.Background()
	for _, q := range []string{"jobs", "free"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "jobs", 2)
	m, _ := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: 5 * time.Second}))
	release := lockTable(t, db.URL, "q_jobs")
	snap := m.Snapshot(ctx)
	release()
	raw, err := json.Marshal(snap.Databases[0].Queues)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	jobs, free := got["jobs"], got["free"]
	if jobs["error"] == nil || jobs["error"] == "" {
		t.Fatalf("locked queue without an error: %s", raw)
	}
	for _, f := range []string{"depth", "visible", "invisible", "oldest_age_seconds", "total_sent"} {
		if v, ok := jobs[f]; !ok || v != nil {
			t.Errorf("locked queue's %s = %v (present %v), want null: %s", f, v, ok, raw)
		}
	}
	if free["depth"] != float64(0) || free["error"] != nil {
		t.Errorf("free queue: %v, want depth 0 and no error", free)
	}
}
