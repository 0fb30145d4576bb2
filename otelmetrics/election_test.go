package otelmetrics

import (
	"context"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

type replica struct {
	m *Metrics
	r *sdkmetric.ManualReader
}

// reporting returns the indexes of the replicas whose collection carries
// queue points.
func reporting(t *testing.T, replicas []replica) []int {
	t.Helper()
	var out []int
	for i, rp := range replicas {
		if len(collect(t, rp.r).points(MetricQueueDepth)) > 0 {
			out = append(out, i)
		}
	}
	return out
}

func TestOneSamplerAcrossReplicas(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	replicas := make([]replica, 3)
	for i := range replicas {
		m, r := newTestMetrics(t, WithQueueSampling(db.Pool, "shared"), WithMinSampleInterval(0))
		replicas[i] = replica{m, r}
	}

	first := reporting(t, replicas)
	if len(first) != 1 {
		t.Fatalf("replicas reporting queue metrics: %v, want exactly one", first)
	}
	// Queue queries per interval stay at one, whatever the number of replicas.
	queries := func() (n int64) {
		for _, rp := range replicas {
			n += rp.m.sampler.queries.Load()
		}
		return n
	}
	before := queries()
	if got := reporting(t, replicas); len(got) != 1 {
		t.Fatalf("second round: reporting %v", got)
	}
	if d := queries() - before; d != 1 {
		t.Fatalf("queue queries in one round of three replicas = %d, want 1", d)
	}
	holder := first[0]
	roles := map[SamplerRole]int{}
	for _, rp := range replicas {
		roles[rp.m.Snapshot(ctx).QueueSampler.Role]++
	}
	if roles[RoleSampler] != 1 || roles[RoleStandby] != 2 {
		t.Fatalf("roles = %v, want one sampler and two standbys", roles)
	}

	// Kill the holder's session, as a failover or a network cut would.
	var pid int32
	if err := db.Pool.QueryRow(ctx,
		`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
	).Scan(&pid); err != nil {
		t.Fatalf("find the election lock holder: %v", err)
	}
	var terminated bool
	if err := db.Pool.QueryRow(ctx, `SELECT pg_terminate_backend($1, 5000)`, pid).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("terminate holder %d: %v %v", pid, terminated, err)
	}

	// Within one collection interval (one collection by every replica)
	// another replica reports, and only one.
	next := reporting(t, replicas)
	if len(next) != 1 || next[0] == holder {
		t.Fatalf("after killing replica %d's session, reporting: %v; want exactly one other", holder, next)
	}
	// And it stays that way: the old holder comes back as a standby.
	if again := reporting(t, replicas); len(again) != 1 || again[0] != next[0] {
		t.Fatalf("reporting then: %v, want [%d]", again, next[0])
	}

	// A closed sampler releases the lock at once.
	if err := replicas[next[0]].m.Close(); err != nil {
		t.Fatal(err)
	}
	rest := []replica{}
	for i, rp := range replicas {
		if i != next[0] {
			rest = append(rest, rp)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := reporting(t, rest); len(got) == 1 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no replica took over after Close: %v", got)
		}
	}
}

// The sampler's session carries the settings its guarantees rest on.
func TestSamplerSessionSettings(t *testing.T) {
	db := pgmqtest.New(t)
	m, r := newTestMetrics(t, WithQueueSampling(db.Pool), WithSampleTimeout(time.Second))
	collect(t, r)
	conn := m.sampler.conn
	if conn == nil {
		t.Fatal("no sampler connection after a collection")
	}
	for setting, want := range map[string]string{
		"application_name":  "pgmqotel-queue-sampler",
		"plan_cache_mode":   "force_generic_plan",
		"statement_timeout": "900ms",
		// pgmqclient's DepthSampler sets its own, so that a locked queue
		// table costs that queue only (pgmqclient.DefaultDepthLockTimeout).
		"lock_timeout":            "100ms",
		"tcp_keepalives_idle":     "10",
		"tcp_keepalives_interval": "5",
		"tcp_keepalives_count":    "3",
	} {
		var (
			got   string
			isTCP bool
		)
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1), inet_client_addr() IS NOT NULL", setting).Scan(&got, &isTCP); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(setting, "tcp_") && !isTCP {
			continue // keepalives apply to TCP only; the server reports 0 on a Unix socket
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}
