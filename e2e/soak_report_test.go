//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// soakRun is what a soak did and saw, for checkSoak.
type soakRun struct {
	plan     churnPlan
	sink     *depthSink
	db       *pgmqtest.DB
	churn    *churner
	causes   []window
	events   []string
	replicas []*replica
	measured [][]usage
	ran      time.Duration
	stopped  time.Time
	ttl      time.Duration
}

// checkSoak checks every depth the Collector delivered against the truth,
// the reporting spans against each other, the gaps against their causes
// and the lease table, and logs (and writes, with PGMQOTEL_CHURN_REPORT)
// the figures.
func checkSoak(t *testing.T, run soakRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	recs, errs, received := run.sink.snapshot()
	history, err := loadHistory(ctx, run.db.Pool, busyQueue)
	if err != nil {
		t.Fatalf("the busy queue's history: %v", err)
	}
	const slack = 500 * time.Millisecond
	before := soakMinInterval + soakSampleTimeout + slack

	checked := tally{}
	var mismatches []string
	var busyTimes []time.Time
	var busyRecs []depthRecord
	run.churn.mu.Lock()
	for _, r := range recs {
		lo, hi := r.at.Add(-before), r.at.Add(slack)
		switch {
		case r.states != 2:
			checked["incomplete (one state only)"]++
			mismatches = append(mismatches, fmt.Sprintf("%s %s at %s: %d of 2 states", r.instance, r.queue, r.at.Format(time.TimeOnly), r.states))
		case r.estimated:
			checked["estimated (not checked)"]++
		case r.queue == busyQueue:
			least, most := history.span(lo, hi)
			checked["busy queue"]++
			busyTimes = append(busyTimes, r.at)
			busyRecs = append(busyRecs, r)
			if r.value < least || r.value > most {
				mismatches = append(mismatches, fmt.Sprintf("%s %s at %s: %d, count(*) %d..%d over the interval",
					r.instance, r.queue, r.at.Format(time.StampMilli), r.value, least, most))
			}
		default:
			q, ok := run.churn.queues[r.queue]
			switch {
			case !ok:
				mismatches = append(mismatches, fmt.Sprintf("%s at %s: unknown queue %q", r.instance, r.at.Format(time.TimeOnly), r.queue))
			case q.uncertain:
				checked["churned, outcome unknown (not checked)"]++
			default:
				checked["churned queues"]++
				if !q.possible(r.value, lo, hi) {
					mismatches = append(mismatches, fmt.Sprintf("%s %s at %s: %d; the queue held 0 until %s, %d until %s",
						r.instance, r.queue, r.at.Format(time.StampMilli), r.value, q.sendEnd.Format(time.StampMilli), q.n, q.dropEnd.Format(time.StampMilli)))
				}
			}
		}
	}
	created, dropped, failed := run.churn.created, run.churn.dropped, run.churn.failed
	run.churn.mu.Unlock()

	gapAfter := 2*run.plan.interval + time.Second
	spans := reportingSpans(busyRecs, gapAfter)
	both := overlaps(spans)
	var distinct []time.Time
	for i, at := range busyTimes {
		if i == 0 || !at.Equal(busyTimes[i-1]) {
			distinct = append(distinct, at)
		}
	}
	holes := gaps(distinct, gapAfter, run.causes, errs)
	byCause := tally{}
	var unexplained []string
	missing := 0
	for _, g := range holes {
		n := int(g.to.Sub(g.from)/run.plan.interval) - 1
		missing += n
		if g.cause == "" {
			unexplained = append(unexplained, fmt.Sprintf("%s..%s", g.from.Format(time.TimeOnly), g.to.Format(time.TimeOnly)))
			byCause["unexplained"] += n
		} else {
			byCause[g.cause] += n
		}
	}
	var leases int
	if err := run.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmqotel.election_lease`).Scan(&leases); err != nil {
		t.Errorf("lease table: %v", err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "churn soak: %v (planned %v), 3 replicas, export interval %v, lease TTL %v\n", run.ran.Round(time.Second), run.plan.duration, run.plan.interval, run.ttl)
	fmt.Fprintf(&b, "events: %d SIGKILL, %d SIGSTOP (%v each), 1 PostgreSQL restart, %d Collector restarts (%v down), %d queues created, %d dropped, %d churn statements failed\n",
		len(run.plan.kills), len(run.plan.freezes), run.plan.freezeFor, len(run.plan.collectorRestarts), run.plan.collectorDown, created, dropped, failed)
	fmt.Fprintf(&b, "depth points received: %d (%d queue depths); checked: %v; mismatches: %d\n", received, len(recs), checked, len(mismatches))
	fmt.Fprintf(&b, "sampler spans: %d, overlapping: %d; intervals without a depth of %s: %d (%v); sampler errors counted: %.0f\n",
		len(spans), len(both), busyQueue, missing, byCause, errorsCounted(errs))
	fmt.Fprintf(&b, "leases left after the replicas stopped: %d\n", leases)
	for i, r := range run.replicas {
		warm, minSpan := 2*time.Minute, 10*time.Minute
		if run.plan.duration < 10*time.Minute {
			warm, minSpan = 20*time.Second, run.plan.duration/3
		}
		for _, line := range resourceSlopes(r.name, run.measured[i], warm, minSpan) {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	b.WriteString("timeline:\n")
	for _, e := range run.events {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	report := b.String()
	t.Log("\n" + report)
	if path := os.Getenv("PGMQOTEL_CHURN_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Errorf("write the report: %v", err)
		}
	}

	if len(mismatches) > 0 {
		t.Errorf("%d depths differ from count(*) over their interval; the first: %s", len(mismatches), strings.Join(mismatches[:min(len(mismatches), 10)], "; "))
	}
	if len(both) > 0 {
		t.Errorf("two replicas reported depth at once: %s", strings.Join(both[:min(len(both), 10)], "; "))
	}
	if len(unexplained) > 0 {
		t.Errorf("depth missing with no cause known (no event, no counted failure): %s", strings.Join(unexplained, ", "))
	}
	if leases != 0 {
		t.Errorf("%d leases left after every replica stopped", leases)
	}
	if want := int(run.plan.duration / run.plan.interval / 2); checked["busy queue"] < want {
		t.Errorf("only %d depths of %s checked, want at least %d", checked["busy queue"], busyQueue, want)
	}
	if run.sink.receivedAfter(run.stopped.Add(time.Second)) {
		t.Error("depth points stamped after every replica stopped")
	}
}
