package main

import (
	"fmt"
	"testing"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

// The summary line says "unknown" for a figure the sampler could not
// know, with the reason, never 0 in its place.
func TestSummarySaysUnknown(t *testing.T) {
	seven, age := int64(7), 1.5
	snap := otelmetrics.Snapshot{Databases: []otelmetrics.DatabaseSnapshot{{Queues: map[string]otelmetrics.QueueSnapshot{
		"known":  {Depth: &seven, Visible: &seven, Invisible: new(int64), OldestAgeSeconds: &age},
		"locked": {Error: "lock timeout"},
	}}}}
	if got := fmt.Sprint(queueSummary(snap, "known")); got != "[depth 7 visible 7 invisible 0 oldest_age 1.5s]" {
		t.Errorf("known queue: %s", got)
	}
	if got := fmt.Sprint(queueSummary(snap, "locked")); got != "[depth unknown visible unknown invisible unknown depth_error lock timeout]" {
		t.Errorf("locked queue: %s", got)
	}
	if got := fmt.Sprint(queueSummary(snap, "absent")); got != "[depth unknown visible unknown invisible unknown]" {
		t.Errorf("absent queue: %s", got)
	}
}
