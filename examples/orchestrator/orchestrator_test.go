package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// healthDeadline is the promise of the health endpoint: an answer within a
// second, whatever the database does.
const healthDeadline = time.Second

func TestParseConfigDefaults(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	cfg, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DatabaseURL: defaultDatabaseURL, Queue: "task_requests", Processors: 4, Rate: 5,
		Work: 500 * time.Millisecond, FailRate: 0.05, VT: 30 * time.Second,
		HealthAddr: "127.0.0.1:8080", Summary: 5 * time.Second, Grace: 10 * time.Second, Notify: "auto",
	}
	if cfg != want {
		t.Errorf("defaults\n got %+v\nwant %+v", cfg, want)
	}

	t.Setenv("DATABASE_URL", "postgres://app@db.example:6432/jobs")
	cfg, err = parseConfig([]string{"-processors", "0", "-rate", "0", "-queue", "Orders", "-duration", "1m", "-max-conns", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != "postgres://app@db.example:6432/jobs" || cfg.Processors != 0 || cfg.Rate != 0 ||
		cfg.Queue != "Orders" || cfg.Duration != time.Minute || cfg.MaxConns != 7 {
		t.Errorf("flags and DATABASE_URL not applied: %+v", cfg)
	}
}

func TestParseConfigRejectsBadValues(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, tc := range []struct {
		args []string
		name string // ConfigError.Name
	}{
		{[]string{"-processors", "-1"}, "-processors"},
		{[]string{"-processors", "1001"}, "-processors"},
		{[]string{"-rate", "-0.5"}, "-rate"},
		{[]string{"-rate", "NaN"}, "-rate"},
		{[]string{"-rate", "1e9"}, "-rate"},
		{[]string{"-work", "-1s"}, "-work"},
		{[]string{"-fail-rate", "1.5"}, "-fail-rate"},
		{[]string{"-fail-rate", "-0.1"}, "-fail-rate"},
		{[]string{"-vt", "0s"}, "-vt"},
		{[]string{"-vt", "2s", "-work", "3s"}, "-vt"},
		{[]string{"-duration", "-1s"}, "-duration"},
		{[]string{"-summary", "-1s"}, "-summary"},
		{[]string{"-grace", "-1s"}, "-grace"},
		{[]string{"-notify", "on"}, "-notify"},
		{[]string{"-max-conns", "-1"}, "-max-conns"},
		{[]string{"-queue", "bad;name"}, "-queue"},
		{[]string{"-queue", ""}, "-queue"},
		{[]string{"-health-addr", "localhost"}, "-health-addr"},
		{[]string{"extra"}, "argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseConfig(tc.args, io.Discard)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Name != tc.name {
				t.Fatalf("parseConfig(%q) = %v, want a *ConfigError for %s", tc.args, err, tc.name)
			}
		})
	}

	t.Run("DATABASE_URL", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "postgres://app:s3cret@db:notaport/jobs")
		_, err := parseConfig(nil, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Name != "DATABASE_URL" {
			t.Fatalf("got %v, want a *ConfigError for DATABASE_URL", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
}

func TestRealMainExitCodes(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-h"}, 0, "Usage: orchestrator"},
		{[]string{"-processors", "-1"}, 2, `invalid -processors "-1": must be between 0 and 1000`},
		{[]string{"-rate", "fast"}, 2, `invalid value "fast" for flag -rate`},
		{[]string{"-no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"-health-addr", "127.0.0.1:99999"}, 1, "health endpoint"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr syncBuffer
			if code := realMain(tc.args, io.Discard, &stderr); code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
}

// Messages are produced, worked on and archived; the ones that fail are
// left in the queue and come back after their visibility timeout, so some
// are archived only at a later read.
func TestProcessesAndRetriesFailures(t *testing.T) {
	db := pgmqtest.New(t)
	cfg := testConfig(db.URL)
	cfg.Processors, cfg.Rate, cfg.Work, cfg.FailRate, cfg.VT = 3, 50, 10*time.Millisecond, 0.5, time.Second
	r := start(t, cfg)

	ctx := context.Background()
	var archived, retried int64
	waitFor(t, time.Minute, "20 archived messages, one of them read more than once", func() bool {
		err := db.Pool.QueryRow(ctx,
			`SELECT count(*), count(*) FILTER (WHERE read_ct > 1) FROM pgmq.a_task_requests`).Scan(&archived, &retried)
		return err == nil && archived >= 20 && retried >= 1
	})
	t.Logf("archived %d, of which %d after a failed attempt", archived, retried)

	code, rep, _ := r.get(t)
	if code != 200 || !rep.Database.Healthy {
		t.Fatalf("health: %d %+v", code, rep.Database)
	}
	if rep.Tasks.Produced == 0 || rep.Tasks.Processed == 0 || rep.Tasks.Failed == 0 {
		t.Errorf("task counts %+v: want produced, processed and failed all above 0", rep.Tasks)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}

	// Every archived message was counted as processed, and only those.
	processed := loggedCount(t, r.out.String(), "processed")
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.a_task_requests`).Scan(&archived); err != nil {
		t.Fatal(err)
	}
	if archived != processed {
		t.Errorf("%d messages archived, %d reported processed", archived, processed)
	}
}

// The health report carries the snapshot's fields with the queue's real
// figures, and the same figures reach the metrics.
func TestHealthReport(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "task_requests"); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := c.Send(ctx, "task_requests", json.RawMessage(fmt.Sprintf(`{"task_id":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, err := c.Read(ctx, "task_requests", time.Hour, 2); err != nil || len(msgs) != 2 {
		t.Fatalf("read 2: %v %v", msgs, err)
	}

	cfg := testConfig(db.URL)
	cfg.Processors, cfg.Rate = 0, 0 // only report
	r := start(t, cfg)
	code, rep, raw := r.get(t)
	if code != 200 {
		t.Fatalf("status %d, want 200; %+v", code, rep)
	}
	for _, path := range []string{
		"active_processors", "processors", "pools", "databases", "time",
		"database.healthy", "database.error", "tasks.produced", "tasks.processed", "tasks.failed",
		"databases.0.role", "databases.0.server_address", "databases.0.db_namespace",
		"databases.0.queues.task_requests.depth", "databases.0.queues.task_requests.visible",
		"databases.0.queues.task_requests.invisible", "databases.0.queues.task_requests.oldest_age_seconds",
	} {
		if !hasPath(raw, path) {
			t.Errorf("/healthz has no %s: %v", path, raw)
		}
	}
	if len(rep.Pools) != 1 {
		t.Fatalf("pools %v, want the orchestrator's one", rep.Pools)
	}
	for name := range rep.Pools {
		pool, _ := raw["pools"].(map[string]any)[name].(map[string]any) // the name holds dots
		for _, f := range []string{"utilization", "used", "idle", "max"} {
			if _, ok := pool[f]; !ok {
				t.Errorf("/healthz pool %s has no %s: %v", name, f, raw["pools"])
			}
		}
		if p := rep.Pools[name]; p.Max != 2 { // no processors: room for the producer and one more
			t.Errorf("pool max %d, want 2", p.Max)
		}
	}
	if len(rep.Databases) != 1 {
		t.Fatalf("databases %+v, want one", rep.Databases)
	}
	q := rep.Databases[0].Queues["task_requests"]
	if q.Depth == nil || *q.Depth != 7 || *q.Visible != 5 || *q.Invisible != 2 || *q.OldestAgeSeconds < 0 {
		t.Errorf("queue %+v, want depth 7, visible 5, invisible 2", q)
	}
	if !rep.Database.Healthy || rep.Database.Error != "" || rep.ActiveProcessors != 0 {
		t.Errorf("database %+v, active %d: want healthy and 0", rep.Database, rep.ActiveProcessors)
	}

	visible, ok := metricValue(t, r.reader, otelmetrics.MetricQueueDepth, attribute.String(otelmetrics.AttrMessageState, "visible"))
	if !ok || visible != 5 {
		t.Errorf("metric %s{visible} = %v (present %v), want 5", otelmetrics.MetricQueueDepth, visible, ok)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// While every processor is busy the report, the pool and the metric all say
// so; a stop then waits at most the grace period for them.
func TestActiveProcessorsWhileBusy(t *testing.T) {
	db := pgmqtest.New(t)
	cfg := testConfig(db.URL)
	cfg.Processors, cfg.Rate = 3, 50
	cfg.Work, cfg.VT = 10*time.Minute, 11*time.Minute // longer than the test: busy until the stop
	cfg.Grace = 100 * time.Millisecond
	r := start(t, cfg)

	var rep report
	waitFor(t, time.Minute, "3 active processors on /healthz", func() bool {
		_, rep, _ = r.get(t)
		return rep.ActiveProcessors == 3
	})
	if rep.Processors["task_requests"] != 3 {
		t.Errorf("processors by kind %v, want task_requests: 3", rep.Processors)
	}
	for name, p := range rep.Pools {
		// Busy processors hold their connection: the pool shows them.
		if p.Used < 3 || p.Max != 5 || p.Utilization != float64(p.Used)/float64(p.Max) {
			t.Errorf("pool %s: %+v, want used >= 3 of max 5 and utilization used/max", name, p)
		}
	}
	active, ok := metricValue(t, r.reader, otelmetrics.MetricProcessorActive, attribute.String(otelmetrics.AttrProcessorKind, "task_requests"))
	if !ok || active != 3 {
		t.Errorf("metric %s = %v (present %v), want 3", otelmetrics.MetricProcessorActive, active, ok)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(r.out.String(), "grace period over") {
		t.Errorf("no log of the abandoned work:\n%s", r.out.String())
	}
	// The abandoned messages stay in the queue, hidden until their
	// visibility timeout, to be retried.
	var hidden int64
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pgmq.q_task_requests WHERE read_ct = 1 AND vt > now()`).Scan(&hidden); err != nil {
		t.Fatal(err)
	}
	if hidden != 3 {
		t.Errorf("%d abandoned messages left hidden in the queue, want 3", hidden)
	}
}

// A stop lets the work in progress finish: no message is left half done.
func TestStopFinishesWorkInProgress(t *testing.T) {
	db := pgmqtest.New(t)
	cfg := testConfig(db.URL)
	cfg.Processors, cfg.Rate, cfg.Work, cfg.VT = 2, 20, 300*time.Millisecond, 5*time.Second
	r := start(t, cfg)
	waitFor(t, time.Minute, "a processor at work", func() bool {
		_, rep, _ := r.get(t)
		return rep.ActiveProcessors > 0 && rep.Tasks.Processed > 0
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}

	var readButLeft, archived int64
	ctx := context.Background()
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.q_task_requests WHERE read_ct > 0`).Scan(&readButLeft); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.a_task_requests`).Scan(&archived); err != nil {
		t.Fatal(err)
	}
	if readButLeft != 0 {
		t.Errorf("%d messages were read but neither archived nor failed", readButLeft)
	}
	if processed := loggedCount(t, r.out.String(), "processed"); processed != archived || archived == 0 {
		t.Errorf("%d archived, %d reported processed: want equal and above 0", archived, processed)
	}
	if strings.Contains(r.out.String(), "grace period over") {
		t.Errorf("work was abandoned:\n%s", r.out.String())
	}
}

// With nothing listening at the database's address the health endpoint
// answers within a second, 503, database unhealthy; the rest keeps going
// and stops cleanly.
func TestHealthWithDatabaseDown(t *testing.T) {
	cfg := testConfig("postgres://postgres@" + closedPort(t) + "/postgres?connect_timeout=5")
	cfg.Processors, cfg.Rate = 2, 5
	r := start(t, cfg)
	for range 3 { // the first report connects; later ones may reuse the sample
		began := time.Now()
		code, rep, _ := r.get(t)
		took := time.Since(began)
		if took >= healthDeadline {
			t.Errorf("/healthz took %v, want under %v", took, healthDeadline)
		}
		if code != 503 || rep.Database.Healthy || rep.Database.Error == "" {
			t.Fatalf("status %d, database %+v: want 503, unhealthy, with an error", code, rep.Database)
		}
		if len(rep.Pools) != 1 || rep.ActiveProcessors != 0 {
			t.Errorf("pools %v, active %d: want the pool and 0 active", rep.Pools, rep.ActiveProcessors)
		}
		t.Logf("503 in %v: %s", took, rep.Database.Error)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// When the database stops answering (connections accepted, nothing
// forwarded) while the processors hold connections, the health endpoint
// still answers within a second and turns unhealthy; it recovers with the
// database.
func TestHealthWithDatabaseNotAnswering(t *testing.T) {
	db := pgmqtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil || u.Host == "" {
		t.Skipf("DATABASE_URL is not a URL with a host (%v); the proxy needs one", err)
	}
	proxy, err := faultproxy.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()

	cfg := testConfig(u.String())
	cfg.Processors, cfg.Rate, cfg.Work, cfg.VT = 2, 20, 100*time.Millisecond, 2*time.Second
	r := start(t, cfg)
	check := func(wantCode int) func() bool {
		return func() bool {
			began := time.Now()
			code, rep, _ := r.get(t)
			if took := time.Since(began); took >= healthDeadline {
				t.Fatalf("/healthz took %v, want under %v (status %d, database %+v)", took, healthDeadline, code, rep.Database)
			}
			if code == 503 {
				t.Logf("503 in %v: %s", time.Since(began), rep.Database.Error)
			}
			return code == wantCode && rep.Database.Healthy == (wantCode == 200)
		}
	}
	waitFor(t, time.Minute, "healthy", check(200))
	waitFor(t, time.Minute, "a processed message", func() bool { _, rep, _ := r.get(t); return rep.Tasks.Processed > 0 })

	if err := proxy.Blackhole(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "503 once the database stops answering", check(503))
	for range 3 {
		check(503)()
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "healthy again", check(200))
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// The whole program: SIGTERM ends it with exit code 0 after a final
// summary.
func TestRealMainStopsOnSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	db := pgmqtest.New(t)
	t.Setenv("DATABASE_URL", db.URL)
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- realMain([]string{"-processors", "2", "-rate", "20", "-work", "20ms", "-vt", "1s",
			"-health-addr", "127.0.0.1:0", "-summary", "100ms"}, &stdout, &stderr)
	}()

	healthURL := regexp.MustCompile(`health=(http://\S+)`)
	var r running
	waitFor(t, time.Minute, "the health endpoint's address in the log", func() bool {
		m := healthURL.FindStringSubmatch(stdout.String())
		if m != nil {
			r.url = m[1]
		}
		return m != nil
	})
	waitFor(t, time.Minute, "processed messages", func() bool { _, rep, _ := r.get(t); return rep.Tasks.Processed > 0 })

	// realMain has registered for SIGTERM (it logged after doing so), so
	// the signal reaches it rather than ending the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d, want 0; stderr:\n%s", c, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("no exit within a minute of SIGTERM; output:\n%s", stdout.String())
	}
	out := stdout.String()
	for _, want := range []string{"msg=summary", "msg=stopping", "msg=stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if stderr.String() != "" {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// loggedCount returns the value of key in the "stopped" log line.
func loggedCount(t *testing.T, out, key string) int64 {
	t.Helper()
	m := regexp.MustCompile(`msg=stopped .*\b` + key + `=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in the stopped line:\n%s", key, out)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hasPath reports whether the decoded JSON has the dotted path.
func hasPath(v map[string]any, path string) bool {
	head, rest, nested := strings.Cut(path, ".")
	x, ok := v[head]
	if !ok || !nested {
		return ok
	}
	if a, ok := x.([]any); ok { // "databases.0.queues"
		i, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
		if err != nil || i >= len(a) {
			return false
		}
		m, ok := a[i].(map[string]any)
		_, after, more := strings.Cut(rest, ".")
		return ok && (!more || hasPath(m, after))
	}
	m, ok := x.(map[string]any)
	return ok && hasPath(m, rest)
}
