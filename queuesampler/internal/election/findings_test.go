package election

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
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
