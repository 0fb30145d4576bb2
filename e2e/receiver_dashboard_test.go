package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/e2e/internal/fakeapp"
	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// TestReceiverQueuesOnDashboardAndAlerts runs the shipped dashboard and
// alert rules on queues sampled by the Collector's pgmq receiver: two
// databases, each with a queue named orders (the second also with one of
// its own), while an application (a fake replica reporting processors and
// a pool, sampling nothing) reports under its own job. Through the real
// Collector and Prometheus:
//
//   - the receiver's series carry the Collector's scrape job, not the
//     application's;
//   - every dashboard panel returns data; the visible backlog adds both
//     orders queues, the depth panel shows each database's queue apart, and
//     with one database selected, only its queues;
//   - while the application's processors are busy, neither
//     PGMQNoQueueSampler nor PGMQBacklogWithoutProcessors is pending;
//   - once the application stops, the backlog alert is pending for each
//     queue with visible messages;
//   - once the second database refuses connections, PGMQNoQueueSampler is
//     pending for that database alone, while the first goes on reporting.
func TestReceiverQueuesOnDashboardAndAlerts(t *testing.T) {
	ctx := context.Background()
	var dbs [2]*pgmqtest.DB
	for i := range dbs {
		dbs[i] = pgmqtest.New(t)
		c := pgmqclient.New(dbs[i].Pool)
		queues := map[string]int{"orders": 3 + 2*i}
		if i == 1 {
			queues["billing_only"] = 2
		}
		for q, n := range queues {
			if err := c.CreateQueue(ctx, q); err != nil {
				t.Fatal(err)
			}
			sendN(t, c, q, n)
		}
	}
	first, second := dbs[0].Name, dbs[1].Name
	overlay := filepath.Join(t.TempDir(), "two-databases.yaml")
	if err := os.WriteFile(overlay, []byte("receivers:\n  pgmq:\n    databases:\n      - dsn: ${env:PGMQ_DATABASE_URL}\n      - dsn: ${env:PGMQ_DATABASE_URL_2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Series of a stopped application, or of a database no longer
	// sampled, leave the exporter after 5 s (above two intervals).
	s := stack.Start(t, stack.WithCollectorConfigs("collector/pgmq-receiver.yaml", overlay),
		stack.WithCollectorEnv("PGMQ_DATABASE_URL="+dbs[0].URL, "PGMQ_DATABASE_URL_2="+dbs[1].URL,
			"PGMQ_COLLECTION_INTERVAL=1s", "PROMETHEUS_METRIC_EXPIRATION=5s"))
	s.SetOTLPEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "orchestrator")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")
	stopApp := startApp(t, fakeapp.Replica{
		InstanceID: "app-1", Processors: map[string]int64{"worker": 2},
		Pool: "main", Used: 2, Idle: 3, Max: 5, IdleMin: 1, AcquireWaits: 1, AcquireTimes: []float64{0.001},
	})

	depth := s.WaitForSamples(t, `pgmq_queue_depth{pgmq_message_state="visible"}`, 3)
	for _, x := range depth {
		if job := x.Labels["job"]; job != "otel-collector" {
			t.Errorf("receiver series %v: job %q, want the Collector's scrape job otel-collector", x.Labels, job)
		}
	}
	s.WaitForSamples(t, `orchestration_processor_active{job="orchestrator"}`, 1)

	t.Run("dashboard", func(t *testing.T) {
		path, err := stack.DashboardPath()
		if err != nil {
			t.Fatal(err)
		}
		// No otelpgmq messaging here: those panels without a 0 fallback
		// have nothing to show.
		messaging := []string{"Processing duration p50 / p95 / p99", "Wait time in queue p50 / p95",
			"Throughput: sent / received / processed", "Processing failures/B"}
		results := s.CheckDashboard(t, path, messaging...)
		if v := panelValue(t, results, "Visible backlog"); v != 3+5+2 {
			t.Errorf("Visible backlog %v, want 10: orders of both databases and billing_only", v)
		}
		got := queueSeries(t, results, "Queue depth: visible / invisible")
		want := []string{
			first + "/orders invisible 0", first + "/orders visible 3",
			second + "/billing_only invisible 0", second + "/billing_only visible 2",
			second + "/orders invisible 0", second + "/orders visible 5",
		}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("queue depth panel %v, want %v", got, want)
		}

		results = s.CheckDashboardSelected(t, path, map[string][]string{"database": {first}}, messaging...)
		if v := panelValue(t, results, "Visible backlog"); v != 3 {
			t.Errorf("Visible backlog of database %s %v, want 3", first, v)
		}
		if got, want := queueSeries(t, results, "Queue depth: visible / invisible"), []string{first + "/orders invisible 0", first + "/orders visible 3"}; !slices.Equal(got, want) {
			t.Errorf("queue depth panel of database %s %v, want %v", first, got, want)
		}
	})

	t.Run("rules while the application works", func(t *testing.T) {
		// Both databases and the processors were in Prometheus before
		// now: an evaluation after now sees them.
		since := time.Now()
		waitForEvaluation(t, s, "PGMQNoQueueSampler", since)
		waitForEvaluation(t, s, "PGMQBacklogWithoutProcessors", since)
		if got := s.QueryInstant(t, `ALERTS{alertname=~"PGMQNoQueueSampler|PGMQBacklogWithoutProcessors"}`); len(got) != 0 {
			t.Errorf("alerts while the application's processors work and the receiver reports every queue: %v", got)
		}
	})

	t.Run("backlog once the application stops", func(t *testing.T) {
		stopApp()
		got := waitForAlerts(t, s, "PGMQBacklogWithoutProcessors", 3)
		var queues []string
		for _, a := range got {
			if a.Labels["job"] != "otel-collector" {
				t.Errorf("backlog alert %v: job %q", a.Labels, a.Labels["job"])
			}
			queues = append(queues, a.Labels["db_namespace"]+"/"+a.Labels["messaging_destination_name"])
		}
		sort.Strings(queues)
		want := []string{first + "/orders", second + "/billing_only", second + "/orders"}
		if sort.Strings(want); !slices.Equal(queues, want) {
			t.Errorf("backlog alerts for %v, want %v", queues, want)
		}
	})

	t.Run("no sampler for a database that refuses connections", func(t *testing.T) {
		u, err := url.Parse(dbs[1].URL)
		if err != nil {
			t.Fatal(err)
		}
		refuseConnections(t, dbs[1])
		got := waitForAlerts(t, s, "PGMQNoQueueSampler", 1)
		want := map[string]string{"alertname": "PGMQNoQueueSampler", "alertstate": "pending", "severity": "warning",
			"server_address": u.Hostname(), "server_port": u.Port(), "db_namespace": second}
		if l := got[0].Labels; !maps.Equal(withoutName(l), want) {
			t.Errorf("alert labels %v, want %v", l, want)
		}
		if n := len(s.QueryInstant(t, fmt.Sprintf(`pgmq_queue_depth{db_namespace=%q}`, first))); n != 2 {
			t.Errorf("database %s: %d depth series, want its one queue's 2 states", first, n)
		}
		if v := s.QueryInstant(t, fmt.Sprintf(`sum(pgmq_sampler_errors_total{db_namespace=%q})`, second)); len(v) != 1 || v[0].Value == 0 {
			t.Errorf("sampler errors of %s: %v, want some", second, v)
		}
	})
}

// startApp runs a fake application replica and returns its stop, which
// flushes a last export; the test's end stops it if the test did not.
func startApp(t *testing.T, r fakeapp.Replica) (stop func()) {
	t.Helper()
	shutdown, err := fakeapp.Start(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shut down fake replica %s: %v", r.InstanceID, err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// refuseConnections makes db refuse new connections, ends the receiver's
// session on it, and lets connections in again when the test ends (before
// the database is dropped).
func refuseConnections(t *testing.T, db *pgmqtest.DB) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgmqtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := pgx.Identifier{db.Name}.Sanitize()
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, pgmqtest.ServerURL())
		if err != nil {
			t.Errorf("allow connections again: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true"); err != nil {
			t.Errorf("allow connections again: %v", err)
		}
	})
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
		db.Name, queuesampler.AppName); err != nil {
		t.Fatal(err)
	}
}

// waitForEvaluation waits until Prometheus has evaluated the rule named
// name after since.
func waitForEvaluation(t *testing.T, s *stack.Stack, name string, since time.Time) {
	t.Helper()
	stack.WaitFor(t, stack.DefaultTimeout, name+" evaluated", func(ctx context.Context) error {
		rules, err := s.Prometheus.Rules(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(rules, func(r stack.Rule) bool { return r.Name == name })
		if i < 0 {
			return fmt.Errorf("no rule %s", name)
		}
		if r := rules[i]; !r.LastEvaluation.After(since) {
			return fmt.Errorf("last evaluated at %v", r.LastEvaluation)
		}
		return nil
	})
}

// waitForAlerts waits until exactly n alerts named name are active
// (pending or firing) and returns them.
func waitForAlerts(t *testing.T, s *stack.Stack, name string, n int) []stack.Sample {
	t.Helper()
	var got []stack.Sample
	stack.WaitFor(t, stack.DefaultTimeout, fmt.Sprintf("%d %s alert(s)", n, name), func(ctx context.Context) error {
		var err error
		got, err = s.Prometheus.Query(ctx, fmt.Sprintf(`ALERTS{alertname=%q}`, name))
		if err != nil {
			return err
		}
		if len(got) != n {
			return fmt.Errorf("%d alerts: %v", len(got), got)
		}
		return nil
	})
	return got
}

// panelValue is the single value of the dashboard panel titled title.
func panelValue(t *testing.T, results []stack.DashboardResult, title string) float64 {
	t.Helper()
	i := slices.IndexFunc(results, func(r stack.DashboardResult) bool { return r.Panel == title })
	if i < 0 || len(results[i].Samples) != 1 {
		t.Fatalf("panel %q: %v, want one sample", title, results)
	}
	return results[i].Samples[0].Value
}

// queueSeries lists the series of the depth panel titled title as
// "database/queue state value", sorted.
func queueSeries(t *testing.T, results []stack.DashboardResult, title string) []string {
	t.Helper()
	i := slices.IndexFunc(results, func(r stack.DashboardResult) bool { return r.Panel == title })
	if i < 0 {
		t.Fatalf("no panel %q", title)
	}
	var out []string
	for _, x := range results[i].Samples {
		l := x.Labels
		out = append(out, fmt.Sprintf("%s/%s %s %v", l["db_namespace"], l["messaging_destination_name"], l["pgmq_message_state"], x.Value))
	}
	sort.Strings(out)
	return out
}

// withoutName is labels without __name__.
func withoutName(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	delete(out, "__name__")
	return out
}
