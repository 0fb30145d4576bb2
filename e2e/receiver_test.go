package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// pgmqJS installs pgmq-js from npm, at the version package-lock.json pins,
// into a directory of the test's own (node_modules is never committed)
// and returns it, with testdata/pgmqjs/fill.mjs beside it. Without node
// and npm, or without the npm registry, the test is skipped (failed under
// CI).
func pgmqJS(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing("%s not found (%v): install Node.js and npm (Debian: apt-get install nodejs npm)", tool, err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "fill.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "pgmqjs", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		missing("npm ci pgmq-js (is the npm registry reachable?): %v\n%s", err, out)
	}
	return dir
}

// fillWithPgmqJS runs fill.mjs in dir against the database at dbURL with
// spec (see fill.mjs) and returns the queues pgmq-js lists afterwards.
func fillWithPgmqJS(t *testing.T, dir, dbURL string, spec []jsQueue) []string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	arg, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "fill.mjs", string(arg))
	cmd.Dir = dir
	password, _ := u.User.Password()
	cmd.Env = append(os.Environ(), "PGHOST="+u.Hostname(), "PGPORT="+u.Port(), "PGDATABASE="+u.Path[1:],
		"PGUSER="+u.User.Username(), "PGPASSWORD="+password)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node fill.mjs: %v\n%s%s", err, out, stderr)
	}
	var res struct{ Queues []string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("fill.mjs printed %q: %v", out, err)
	}
	return res.Queues
}

// jsQueue is one entry of fill.mjs's spec.
type jsQueue struct {
	Queue string `json:"queue"`
	Send  int    `json:"send"`
	Read  int    `json:"read"`
}

// countStates returns count(*) of queue's visible and invisible messages.
func countStates(t *testing.T, dbURL, queue string) (visible, invisible int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE vt <= clock_timestamp()), count(*) FILTER (WHERE vt > clock_timestamp()) FROM pgmq.`+
		pgx.Identifier{"q_" + queue}.Sanitize()).Scan(&visible, &invisible); err != nil {
		t.Fatal(err)
	}
	return visible, invisible
}

// TestQueueDepthFromJavaScriptProducer is the cross-language proof: a
// producer written in JavaScript (pgmq-js from npm, no Go anywhere on its
// side) fills queues, and their depths arrive in Prometheus through the
// Collector's pgmq receiver, configured by collector/pgmq-receiver.yaml and
// the environment only, equal to count(*) in the database, with the
// database's server_address, server_port and db_namespace labels.
func TestQueueDepthFromJavaScriptProducer(t *testing.T) {
	js := pgmqJS(t)
	db := pgmqtest.New(t)
	spec := []jsQueue{{"orders", 7, 2}, {"emails", 3, 0}, {"idle", 0, 0}}
	if got := fillWithPgmqJS(t, js, db.URL, spec); !slices.Equal(got, []string{"emails", "idle", "orders"}) {
		t.Fatalf("pgmq-js lists queues %v", got)
	}
	s := stack.Start(t, stack.WithCollectorConfigs("collector/pgmq-receiver.yaml"),
		stack.WithCollectorEnv("PGMQ_DATABASE_URL="+db.URL, "PGMQ_COLLECTION_INTERVAL=1s"))

	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	labels := fmt.Sprintf(`db_namespace=%q, server_address=%q, server_port=%q, messaging_system="pgmq"`, db.Name, u.Hostname(), u.Port())
	for _, q := range spec {
		visible, invisible := countStates(t, db.URL, q.Queue)
		if visible+invisible != q.Send || invisible != q.Read {
			t.Fatalf("%s: count(*) says %d visible and %d invisible after %d sent and %d read", q.Queue, visible, invisible, q.Send, q.Read)
		}
		for state, want := range map[string]int{"visible": visible, "invisible": invisible} {
			promql := fmt.Sprintf(`pgmq_queue_depth{%s, messaging_destination_name=%q, pgmq_message_state=%q, pgmq_depth_method="count"}`, labels, q.Queue, state)
			waitForValue(t, s, promql, equals(want))
		}
		waitForValue(t, s, fmt.Sprintf(`pgmq_queue_sent_messages_total{%s, messaging_destination_name=%q}`, labels, q.Queue), equals(q.Send))
	}
	if got := s.QueryInstant(t, fmt.Sprintf(`pgmq_sampler_errors_total{%s}`, labels)); len(got) != 0 {
		t.Fatalf("sampler errors: %+v", got)
	}
}

// equals is waitForValue's condition for exactly n.
func equals(n int) func(float64) bool { return func(v float64) bool { return v == float64(n) } }
