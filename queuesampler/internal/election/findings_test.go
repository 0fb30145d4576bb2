package election

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// A renewal that marks the lease unhealthy commits, and its reply is lost
// on the way back. A healthy replica may take such a lease over at once,
// so the old leader must not go on trusting its term as if the lease were
// still written healthy. Before, a store error left the elector with its
// old healthy flag: both replicas trusted their terms, two samplers at
// once.
func TestLostReplyOfUnhealthyRenewal(t *testing.T) {
	db := pgmqtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()

	var healthy atomic.Bool
	healthy.Store(true)
	a, err := New(store(t, u.String()), Config{Key: 1, LeaderID: "a", TTL: time.Minute, Healthy: healthy.Load})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(store(t, db.URL), Config{Key: 1, LeaderID: "b", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	aTerm := mustStep(t, a, Leader).Term
	mustStep(t, b, Follower)

	// a's exports fail; its renewal writes the lease unhealthy and commits,
	// but the answer never comes back.
	healthy.Store(false)
	if err := proxy.HoldReplies(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := a.Step(ctx); err == nil {
		t.Fatal("a's renewal answered through held replies")
	}
	var written bool
	if err := db.Pool.QueryRow(context.Background(), `SELECT healthy FROM `+PostgresTable+` WHERE key = 1`).Scan(&written); err != nil {
		t.Fatal(err)
	}
	if written {
		t.Fatal("the unhealthy renewal did not commit; the test proves nothing")
	}

	bTerm := mustStep(t, b, Leader).Term // takes the unhealthy lease over at once
	if a.Trusted(aTerm) && b.Trusted(bTerm) {
		t.Fatal("a and b both trust their terms: two samplers at once")
	}
	if a.Trusted(aTerm) {
		t.Fatal("a trusts a term whose lease it may have written unhealthy")
	}
}

// skewClock is the database host's clock as the test sets it: an offset
// added to now() in every statement of the stores that share it.
type skewClock struct{ d atomic.Int64 }

func (s *skewClock) get() time.Duration      { return time.Duration(s.d.Load()) }
func (s *skewClock) advance(d time.Duration) { s.d.Add(int64(d)) }

// The database host's clock steps forward by more than the margin while a
// leader holds the lease. The replicas' clocks run on: the leader still
// trusts its term for TTL - margin after its last renewal, on its own
// clock. No other replica may lead before that window has run out. Before,
// the lease expired on the database's clock, so a follower took it over
// once the step had eaten the margin, while the old leader still trusted
// its term: two samplers at once for (step - margin).
func TestDatabaseClockStepForward(t *testing.T) {
	db := pgmqtest.New(t)
	local := newClock() // both replicas' monotonic clocks (they run at the same rate)
	var dbClock skewClock
	const ttl, margin = 10 * time.Second, 2 * time.Second
	newElector := func(id string) *Elector {
		e, err := New(store(t, db.URL, WithClockSkew(dbClock.get)), Config{Key: 1, LeaderID: id, TTL: ttl, Margin: margin, Now: local.Now})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := newElector("a"), newElector("b")
	aTerm := mustStep(t, a, Leader).Term
	mustStep(t, b, Follower)

	// 7.5 s pass on every clock; then the database's clock steps 3 s
	// forward (more than the 2 s margin). a, still within its window
	// (trusted until 8 s), has not renewed yet.
	for _, elapsed := range []time.Duration{2500 * time.Millisecond, 2500 * time.Millisecond, 2500 * time.Millisecond} {
		local.Advance(elapsed)
		dbClock.advance(elapsed)
		mustStep(t, b, Follower)
	}
	dbClock.advance(3 * time.Second)
	if !a.Trusted(aTerm) {
		t.Fatal("a's window ran out before its TTL - margin")
	}
	st, err := b.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.State == Leader && a.Trusted(aTerm) {
		t.Fatalf("b leads while a still trusts its term: two samplers at once")
	}
	// Once a's window has run out without a renewal, b takes over.
	for range 4 {
		local.Advance(time.Second)
		dbClock.advance(time.Second)
		if st, _ = b.Step(context.Background()); st.State == Leader {
			break
		}
	}
	if st.State != Leader || a.Trusted(aTerm) {
		t.Fatalf("after a's window: b %v (%s), a trusted %v; want b leading alone", st.State, st.Reason, a.Trusted(aTerm))
	}
}

// Replicas split between an old primary that keeps running and a standby
// promoted beside it each elect a sampler: the lease table is UNLOGGED, so
// the promoted server starts with none, and neither server knows the other
// took writes. This is the documented bound (doc.go, "Split primaries"),
// held here: one sampler per server, each trusting its term, for as long
// as the old primary accepts the replicas' writes; once it is stopped (the
// fencing every failover needs, since the application writes there too),
// its leader stops trusting its term when its window runs out and leads no
// more.
func TestSplitPrimariesEachElect(t *testing.T) {
	primary := pgcluster.Start(t, pgcluster.Options{})
	local := newClock()
	const ttl = 10 * time.Second
	newElector := func(id, dsn string) *Elector {
		e, err := New(store(t, dsn), Config{Key: 1, LeaderID: id, TTL: ttl, Now: local.Now})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a := newElector("a", primary.URL(""))
	aTerm := mustStep(t, a, Leader).Term
	standby := primary.Standby(t, pgcluster.Options{})
	standby.WaitReplayed(t, primary)
	if st, err := newElector("s", standby.URL("")).Step(context.Background()); !errors.Is(err, ErrReadOnly) || st.State != Follower {
		t.Fatalf("a replica on the standby before promotion: %+v, %v; want read-only follower", st, err)
	}
	standby.Promote(t) // the old primary keeps running

	b := newElector("b", standby.URL(""))
	bTerm := mustStep(t, b, Leader).Term
	if !a.Trusted(aTerm) || !b.Trusted(bTerm) {
		t.Fatalf("split primaries: a trusted %v, b trusted %v; the documented bound says both", a.Trusted(aTerm), b.Trusted(bTerm))
	}
	t.Log("split primaries: one sampler per server, as documented")

	// Fencing the old primary ends a's term with its trust window.
	primary.Stop(t, "immediate")
	local.Advance(ttl / 2)
	if st, err := a.Step(context.Background()); err == nil || st.State != Leader {
		t.Fatalf("a with its primary stopped, within its window: %+v, %v; want leader with an error", st, err)
	}
	local.Advance(ttl / 2)
	if a.Trusted(aTerm) {
		t.Fatal("a trusts its term past its window with its primary stopped")
	}
	if st, _ := a.Step(context.Background()); st.State != Follower || st.Reason != ReasonUntrusted {
		t.Fatalf("a after its window: %+v, want untrusted follower", st)
	}
	mustStep(t, b, Leader)
}
