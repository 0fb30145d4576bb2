package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// The server counts the samples: every statement is logged
// (log_statement = all) after a prefix giving the time (Unix epoch, ms),
// the backend's process id and the application name. A depth sample sends
// the queue discovery, the only statement that reads pgmq.meta, exactly
// once; the election's statements and the other replicas' do not read it.
var countingSettings = map[string]string{
	"log_statement":   "all",
	"log_line_prefix": "PGLOG|%n|%p|%a| ",
}

// discoveryMarker is in the text of the sampler's discovery statement.
const discoveryMarker = "FROM pgmq.meta AS m"

// loggedSample is one depth sample as the server logged it.
type loggedSample struct {
	at  time.Time // when the server logged the discovery
	pid int       // the backend serving the sampler's session
}

// serverSamples reads the depth samples the server logged so far.
func serverSamples(t *testing.T, logPath string) []loggedSample {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []loggedSample
	var cur *loggedSample // the record being read, when it is a sampler's statement
	var text strings.Builder
	flush := func() {
		if cur != nil && strings.Contains(text.String(), discoveryMarker) {
			out = append(out, *cur)
		}
		cur = nil
		text.Reset()
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "PGLOG|") {
			text.WriteString(line) // a continuation of the record's statement
			continue
		}
		flush()
		fields := strings.SplitN(line, "|", 5)
		if len(fields) < 5 || fields[3] != queuesampler.AppName {
			continue
		}
		epoch, err1 := strconv.ParseFloat(fields[1], 64)
		pid, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("server log line %q", line)
		}
		cur = &loggedSample{at: time.UnixMilli(int64(epoch * 1000)), pid: pid}
		text.WriteString(fields[4])
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// samplesAfter waits until the server logged n samples after since, and
// returns them.
func samplesAfter(t *testing.T, logPath string, since time.Time, n int) []loggedSample {
	t.Helper()
	var got []loggedSample
	stack.WaitFor(t, time.Duration(n)*10*time.Second, fmt.Sprintf("%d samples after %v", n, since.Format(time.StampMilli)), func(context.Context) error {
		got = got[:0]
		for _, s := range serverSamples(t, logPath) {
			if s.at.After(since) {
				got = append(got, s)
			}
		}
		if len(got) < n {
			return fmt.Errorf("%d samples so far", len(got))
		}
		got = got[:n]
		return nil
	})
	return got
}

// mustBeOneSamplerPerInterval fails unless samples come from one session
// and follow each other at the collection interval: one sample per
// interval, not one per replica.
func mustBeOneSamplerPerInterval(t *testing.T, db string, samples []loggedSample, interval time.Duration) {
	t.Helper()
	for i, s := range samples {
		if s.pid != samples[0].pid {
			t.Fatalf("%s: samples from backends %d and %d in one window: two samplers", db, samples[0].pid, s.pid)
		}
		if i == 0 {
			continue
		}
		if gap := s.at.Sub(samples[i-1].at); gap < interval/2 || gap > 3*interval/2 {
			t.Fatalf("%s: %v between two samples, want one per interval of %v: %v", db, gap, interval, samples)
		}
	}
}

// leaseHolderPID is the process id in the leader id of the election of
// every queue of the database at dbURL ("host/pid/random").
func leaseHolderPID(t *testing.T, dbURL string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	l, err := queuesampler.LeaseHolder(ctx, conn, queuesampler.ElectionKey(queuedepth.Options{}))
	if err != nil || l.IsZero() {
		t.Fatalf("lease holder: %+v, %v", l, err)
	}
	parts := strings.Split(l.LeaderID, "/")
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		t.Fatalf("leader id %q: %v", l.LeaderID, err)
	}
	return pid
}

// samplerSessions counts the sampler connections open on the database.
func samplerSessions(t *testing.T, dbURL string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
		queuesampler.AppName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestThreeReceiverReplicasSampleEachDatabaseOnce runs three Collectors
// with the pgmq receiver (collector/pgmq-receiver.yaml and an overlay
// naming two databases, each in a PostgreSQL cluster of its own with a
// queue named orders) and counts the depth samples at each server: all
// three replicas connect and take part in the election, yet each database
// is sampled by one session, once per collection interval. Then the
// Collector holding the first database's lease is killed with SIGKILL (no
// shutdown, no lease released): another replica samples that database
// within the lease's TTL plus one interval, and again alone; a database
// whose holder survived goes on being sampled once per interval.
func TestThreeReceiverReplicasSampleEachDatabaseOnce(t *testing.T) {
	const interval = time.Second
	ttl := 3*interval + queuesampler.DefaultSampleTimeout // the receiver's default for this interval
	var clusters [2]*pgcluster.Cluster
	var urls [2]string
	for i := range clusters {
		clusters[i] = pgcluster.Start(t, pgcluster.Options{Settings: countingSettings})
		db := pgmqtest.NewAt(t, clusters[i].URL(""))
		c := pgmqclient.New(db.Pool)
		if err := c.CreateQueue(context.Background(), "orders"); err != nil {
			t.Fatal(err)
		}
		sendN(t, c, "orders", 2+i)
		urls[i] = db.URL
	}
	calibrate(t, clusters[0].LogPath(), urls[0])
	overlay := filepath.Join(t.TempDir(), "two-databases.yaml")
	if err := os.WriteFile(overlay, []byte("receivers:\n  pgmq:\n    databases:\n      - dsn: ${env:PGMQ_DATABASE_URL}\n      - dsn: ${env:PGMQ_DATABASE_URL_2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	replicas := map[int]*stack.Collector{}
	for range 3 {
		c, err := stack.StartCollector(ctx, stack.CollectorOptions{Dir: t.TempDir(), Configs: []string{"collector/pgmq-receiver.yaml", overlay},
			Env: []string{"PGMQ_DATABASE_URL=" + urls[0], "PGMQ_DATABASE_URL_2=" + urls[1], "PGMQ_COLLECTION_INTERVAL=" + interval.String()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("--- collector %d log (tail) ---\n%s", c.PID(), c.LogTail(30))
			}
			_ = c.Stop(context.Background())
		})
		replicas[c.PID()] = c
	}

	// Every replica has connected to both databases: three sampler
	// sessions each, while one samples.
	began := time.Now()
	for i, u := range urls {
		stack.WaitFor(t, stack.DefaultTimeout, "three sampler sessions", func(context.Context) error {
			if n := samplerSessions(t, u); n != 3 {
				return fmt.Errorf("database %d: %d sampler sessions", i, n)
			}
			return nil
		})
	}
	holders := [2]int{}
	for i := range clusters {
		samples := samplesAfter(t, clusters[i].LogPath(), began, 10)
		mustBeOneSamplerPerInterval(t, fmt.Sprintf("database %d", i), samples, interval)
		holders[i] = leaseHolderPID(t, urls[i])
		if replicas[holders[i]] == nil {
			t.Fatalf("database %d: the lease names process %d, not one of the replicas", i, holders[i])
		}
		t.Logf("database %d: 10 samples in %v, all by one session (backend %d), lease held by collector %d",
			i, samples[9].at.Sub(samples[0].at).Round(time.Millisecond), samples[0].pid, holders[i])
	}

	// Kill the holder of the first database's lease.
	killed := holders[0]
	killedAt := time.Now()
	if err := replicas[killed].Kill(); err != nil {
		t.Fatal(err)
	}
	for i := range clusters {
		after := samplesAfter(t, clusters[i].LogPath(), killedAt, 6)
		if holders[i] != killed {
			mustBeOneSamplerPerInterval(t, fmt.Sprintf("database %d (holder alive)", i), after, interval)
			continue
		}
		var before int // the killed replica's backend
		for _, s := range serverSamples(t, clusters[i].LogPath()) {
			if s.at.Before(killedAt) {
				before = s.pid
			}
		}
		var first int
		for first < len(after) && after[first].pid == before {
			first++ // the killed replica's last sample, logged as it died
		}
		if first >= len(after) {
			t.Fatalf("database %d: no sample by another session after the kill", i)
		}
		took := after[first].at.Sub(killedAt)
		// 250 ms of slack for this machine's scheduling; the TTL runs from
		// the holder's last renewal, at most one interval before the kill.
		if bound := ttl + interval + 250*time.Millisecond; took > bound {
			t.Fatalf("database %d: taken over %v after the kill, want within the TTL %v plus one interval", i, took, ttl)
		}
		mustBeOneSamplerPerInterval(t, fmt.Sprintf("database %d after the takeover", i), samplesAfter(t, clusters[i].LogPath(), after[first].at.Add(-time.Millisecond), 5), interval)
		if h := leaseHolderPID(t, urls[i]); h == killed || replicas[h] == nil {
			t.Fatalf("database %d: lease held by %d after the kill of %d", i, h, killed)
		}
		t.Logf("database %d: taken over %v after the kill -9 (lease TTL %v, interval %v)", i, took.Round(time.Millisecond), ttl, interval)
	}
}

// calibrate proves the count: a sampler of this process, without
// election, takes three samples, and the server log shows exactly as many
// discoveries as the sampler counts depth queries, all from its session.
func calibrate(t *testing.T, logPath, dbURL string) {
	t.Helper()
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	s, err := queuesampler.New(queuesampler.Config{Conn: pc, NoElection: true, MinInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := len(serverSamples(t, logPath))
	for range 3 {
		if sample, err := s.Get(context.Background()); err != nil || sample.Err != nil {
			t.Fatalf("calibration sample: %v %+v", err, sample)
		}
	}
	var logged []loggedSample
	stack.WaitFor(t, stack.DefaultTimeout, "the calibration samples in the server log", func(context.Context) error {
		logged = serverSamples(t, logPath)[before:]
		if int64(len(logged)) != s.Stats().Queries {
			return fmt.Errorf("server logged %d samples, the sampler sent %d", len(logged), s.Stats().Queries)
		}
		return nil
	})
	if s.Stats().Queries != 3 || logged[0].pid != logged[2].pid {
		t.Fatalf("calibration: %d queries, logged %+v", s.Stats().Queries, logged)
	}
}

func sendN(t *testing.T, c *pgmqclient.Client, queue string, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.Send(context.Background(), queue, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
}
