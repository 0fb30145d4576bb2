package otelmetrics

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
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
	const ttl = time.Second
	replicas := make([]replica, 3)
	for i := range replicas {
		m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{Queues: []string{"shared"}}, MinInterval: -1, SampleTimeout: ttl / 2, ElectionTTL: ttl}))
		replicas[i] = replica{m, r}
	}

	first := reporting(t, replicas)
	if len(first) != 1 {
		t.Fatalf("replicas reporting queue metrics: %v, want exactly one", first)
	}
	// Queue queries per interval stay at one, whatever the number of replicas.
	queries := func() (n int64) {
		for _, rp := range replicas {
			n += sampler(rp.m).Stats().Queries
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
	roles := map[queuesampler.Role]int{}
	for _, rp := range replicas {
		roles[rp.m.Snapshot(ctx).Databases[0].Role]++
	}
	if roles[queuesampler.RoleSampler] != 1 || roles[queuesampler.RoleStandby] != 2 {
		t.Fatalf("roles = %v, want one sampler and two standbys", roles)
	}

	// Killing the holder's session ends no term: leadership is a lease,
	// not a session. The holder reconnects at once and goes on leading.
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, queuesampler.AppName); err != nil {
		t.Fatal(err)
	}
	if got := reporting(t, replicas); len(got) != 1 || got[0] != holder {
		t.Fatalf("after killing every sampler session, reporting %v, want [%d]", got, holder)
	}

	// The holder stops collecting (frozen): once its lease has expired
	// another replica takes over, and the old holder, collecting again,
	// reports nothing: its term has ended.
	others := []int{}
	for i := range replicas {
		if i != holder {
			others = append(others, i)
		}
	}
	var next int
	eventually(t, 10*ttl, "another replica to take over", func() bool {
		for _, i := range others {
			if len(collect(t, replicas[i].r).points(MetricQueueDepth)) > 0 {
				next = i
				return true
			}
		}
		return false
	})
	if pts := collect(t, replicas[holder].r).points(MetricQueueDepth); len(pts) != 0 {
		t.Fatalf("the old holder reports after its term ended: %v", pts)
	}
	if got := reporting(t, replicas); len(got) != 1 || got[0] != next {
		t.Fatalf("reporting after the takeover: %v, want [%d]", got, next)
	}

	// A closed sampler releases the lease: another replica leads at its
	// very next collection, without waiting for the lease to expire.
	if err := replicas[next].m.Close(); err != nil {
		t.Fatal(err)
	}
	rest := []replica{}
	for i, rp := range replicas {
		if i != next {
			rest = append(rest, rp)
		}
	}
	if got := reporting(t, rest); len(got) != 1 {
		t.Fatalf("reporting at the first round after Close: %v, want one", got)
	}
}

// A sample reused within the minimum interval is not reported once its
// term has ended: a replica that no longer leads reports nothing from its
// old term, even from memory. The term ends here by resignation, as when
// the replica closes.
func TestCachedSampleOfEndedTermNotReported(t *testing.T) {
	db := pgmqtest.New(t)
	if err := pgmqclient.New(db.Pool).CreateQueue(context.Background(), "jobs"); err != nil {
		t.Fatal(err)
	}
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: time.Hour, ElectionTTL: 3 * time.Hour}))
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatal("no depth from the leader")
	}
	samples := sampler(m).Stats().Attempts
	if err := sampler(m).Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pts := collect(t, r).points(MetricQueueDepth); len(pts) != 0 {
		t.Fatalf("a cached sample of an ended term was reported: %v", pts)
	}
	if s := m.Snapshot(context.Background()); len(s.Databases[0].Queues) != 0 || s.Databases[0].Role == queuesampler.RoleSampler {
		t.Fatalf("snapshot reports an ended term's sample: %+v %v", s.Databases, s.Databases[0].Queues)
	}
	if n := sampler(m).Stats().Attempts; n != samples {
		t.Fatalf("the sample was not reused (%d samples, then %d): the test proves nothing", samples, n)
	}
}

// A leader whose exports fail marks its lease unhealthy, which a healthy
// replica may take over at any moment: from that renewal on it exports no
// queue figures (two replicas would report the same queues), yet keeps
// showing them in its own Snapshot; once healthy again it reports again.
func TestUnhealthyLeaderExportsNoDepthButShowsIt(t *testing.T) {
	db := pgmqtest.New(t)
	if err := pgmqclient.New(db.Pool).CreateQueue(context.Background(), "jobs"); err != nil {
		t.Fatal(err)
	}
	var healthy atomic.Bool
	healthy.Store(true)
	// Every collection samples (and renews), so each one writes the
	// lease's health as it stands.
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}), WithExportHealth(healthy.Load))
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatal("no depth from the healthy leader")
	}
	healthy.Store(false)
	if pts := collect(t, r).points(MetricQueueDepth); len(pts) != 0 {
		t.Fatalf("an unhealthy leader exported depth: %v", pts)
	}
	if !sampler(m).Leading() {
		t.Fatal("alone, the unhealthy replica should still lead")
	}
	if s := m.Snapshot(context.Background()); s.Databases[0].Role != queuesampler.RoleSampler || len(s.Databases[0].Queues) != 1 {
		t.Fatalf("the unhealthy leader's own snapshot lost its queues: %+v %v", s.Databases, s.Databases[0].Queues)
	}
	healthy.Store(true)
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatal("no depth once healthy again")
	}
}

// A Snapshot after Close (a health endpoint still served during shutdown)
// neither reconnects nor takes the lease back: it says the sampler is
// closed, and the lease Close released stays free.
func TestSnapshotAfterCloseStaysClosed(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))
	if _, ok := collect(t, r).value(MetricQueueDepth, queueAttr("jobs"), visible); !ok {
		t.Fatal("no depth from the leader")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	s := m.Snapshot(ctx)
	if len(s.Databases) == 0 || s.Databases[0].Role == queuesampler.RoleSampler || len(s.Databases[0].Queues) != 0 || s.Databases[0].Error == "" {
		t.Fatalf("snapshot after Close: %+v %v, want no queues and an error", s.Databases, s.Databases[0].Queues)
	}
	var held int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM pgmqotel.election_lease WHERE expires_at > now()").Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Fatalf("%d leases held after Close and a Snapshot, want 0", held)
	}
}

// A TTL the leader could not renew within is refused before any I/O.
func TestElectionTTLTooShort(t *testing.T) {
	db := pgmqtest.New(t)
	_, err := New(WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: time.Minute, ElectionTTL: 30 * time.Second}))
	if !errors.Is(err, queuesampler.ErrInvalidElectionTTL) {
		t.Fatalf("New with a TTL below the minimum sample interval: %v, want queuesampler.ErrInvalidElectionTTL", err)
	}
}
