package election

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock shared by a memory store and its electors, so
// the tests decide when leases expire and trust windows end.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memStore is a Store in memory on clock, with the PostgreSQL store's
// semantics; hooks let a test fail or slow one call.
type memStore struct {
	clock *clock
	mu    sync.Mutex
	rows  map[int64]Lease
	// healthy says whether each lease's holder was healthy at its last
	// acquire or renew.
	healthy map[int64]bool
	// onRenew, when set, runs inside Renew before it answers.
	onRenew func() error
}

func newMemStore(c *clock) *memStore {
	return &memStore{clock: c, rows: map[int64]Lease{}, healthy: map[int64]bool{}}
}

func (m *memStore) TryAcquire(_ context.Context, p AcquireParams) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	if l, ok := m.rows[p.Key]; ok && l.LeaderID != p.LeaderID && !(p.Healthy && !m.healthy[p.Key]) && !l.Same(p.Stale) {
		return l, ErrHeld
	}
	l := Lease{Term: Term{LeaderID: p.LeaderID, ElectedAt: now}, ExpiresAt: now.Add(p.TTL)}
	m.rows[p.Key] = l
	m.healthy[p.Key] = p.Healthy
	return l, nil
}

func (m *memStore) Renew(_ context.Context, p RenewParams) (Lease, error) {
	if m.onRenew != nil {
		if err := m.onRenew(); err != nil {
			return Lease{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	l, ok := m.rows[p.Key]
	if !ok || !l.Term.Equal(p.Term) {
		return Lease{}, ErrLeaseLost
	}
	l.ExpiresAt = now.Add(p.TTL)
	m.rows[p.Key] = l
	m.healthy[p.Key] = p.Healthy
	return l, nil
}

func (m *memStore) Release(_ context.Context, p ReleaseParams) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.rows[p.Key]; ok && l.Term.Equal(p.Term) {
		delete(m.rows, p.Key)
	}
	return nil
}

func (m *memStore) Holder(_ context.Context, key int64) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.rows[key]; ok && l.ExpiresAt.After(m.clock.Now()) {
		return l, nil
	}
	return Lease{}, nil
}

const ttl = 10 * time.Second

func newTestElector(t *testing.T, s Store, c *clock, id string, healthy func() bool) *Elector {
	t.Helper()
	e, err := New(s, Config{Key: 1, LeaderID: id, TTL: ttl, Now: c.Now, Healthy: healthy})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustStep(t *testing.T, e *Elector, want State) Status {
	t.Helper()
	st, err := e.Step(context.Background())
	if err != nil {
		t.Fatalf("%s: Step: %v", e.LeaderID(), err)
	}
	if st.State != want {
		t.Fatalf("%s: state %v (%s), want %v", e.LeaderID(), st.State, st.Reason, want)
	}
	return st
}

func TestOneLeaderThenTakeoverAfterExpiry(t *testing.T) {
	c := newClock()
	s := newMemStore(c)
	a := newTestElector(t, s, c, "a", nil)
	b := newTestElector(t, s, c, "b", nil)
	st := mustStep(t, a, Leader)
	if got := mustStep(t, b, Follower); got.Reason != ReasonHeld {
		t.Fatalf("b's reason = %q", got.Reason)
	}
	// a keeps leading while it steps within the TTL.
	for range 5 {
		c.Advance(ttl / 2)
		mustStep(t, a, Leader)
		mustStep(t, b, Follower)
	}
	if !a.Trusted(st.Term) {
		t.Fatal("a's term is not trusted while it renews")
	}
	// a freezes: b takes over once the lease has expired, and a, waking,
	// no longer trusts its term before it has even stepped.
	c.Advance(ttl)
	if a.Trusted(st.Term) {
		t.Fatal("a frozen past its TTL still trusts its term")
	}
	bt := mustStep(t, b, Leader)
	if got := mustStep(t, a, Follower); got.Reason != ReasonLost {
		t.Fatalf("a's reason after waking = %q, want lost", got.Reason)
	}
	if got := mustStep(t, a, Follower); got.Reason != ReasonHeld {
		t.Fatalf("a's reason at its next step = %q, want held", got.Reason)
	}
	if !b.Trusted(bt.Term) || a.Trusted(st.Term) {
		t.Fatal("trust after the takeover is not b's alone")
	}
}

// A renewal that succeeds slowly does not stretch the trust window: it is
// anchored at the attempt's start.
func TestSlowRenewDoesNotExtendTrustWindow(t *testing.T) {
	c := newClock()
	s := newMemStore(c)
	a := newTestElector(t, s, c, "a", nil)
	mustStep(t, a, Leader)
	s.onRenew = func() error { c.Advance(ttl / 2); return nil }
	st := mustStep(t, a, Leader)
	// Started at T, answered at T+ttl/2: trusted until T+ttl-margin.
	c.Advance(ttl/2 - ttl/5 - time.Millisecond)
	if !a.Trusted(st.Term) {
		t.Fatal("not trusted within the window")
	}
	c.Advance(2 * time.Millisecond)
	if a.Trusted(st.Term) {
		t.Fatal("trusted past start+TTL-margin")
	}
}

// A store that cannot answer keeps the term only while it is trusted.
func TestStoreErrorEndsLeadershipWithTheWindow(t *testing.T) {
	c := newClock()
	s := newMemStore(c)
	a := newTestElector(t, s, c, "a", nil)
	st := mustStep(t, a, Leader)
	down := errors.New("connection refused")
	s.onRenew = func() error { return down }
	c.Advance(ttl / 2)
	got, err := a.Step(context.Background())
	if !errors.Is(err, down) || got.State != Leader || !got.Term.Equal(st.Term) {
		t.Fatalf("step while trusted: %+v %v", got, err)
	}
	c.Advance(ttl / 2)
	got, err = a.Step(context.Background())
	if !errors.Is(err, down) || got.State != Follower || got.Reason != ReasonUntrusted {
		t.Fatalf("step past the window: %+v %v", got, err)
	}
}

// A leader whose exports fail is replaced by a healthy replica at that
// replica's next step; an unhealthy replica never takes a healthy leader's
// lease; a lone unhealthy replica leads, so its in-process readers still
// get depths.
func TestUnhealthyLeaderYieldsToHealthy(t *testing.T) {
	c := newClock()
	s := newMemStore(c)
	var mu sync.Mutex
	aHealthy := true
	setA := func(v bool) { mu.Lock(); aHealthy = v; mu.Unlock() }
	a := newTestElector(t, s, c, "a", func() bool { mu.Lock(); defer mu.Unlock(); return aHealthy })
	b := newTestElector(t, s, c, "b", nil)
	mustStep(t, a, Leader)
	mustStep(t, b, Follower)
	setA(false)
	aTerm := mustStep(t, a, Leader).Term // renews, marking its lease unhealthy
	// From that renewal on a holds its term but may report nothing: b may
	// take the lease before it expires.
	if !a.Holds(aTerm) || a.Trusted(aTerm) {
		t.Fatalf("a unhealthy: holds %v, trusted %v; want true, false", a.Holds(aTerm), a.Trusted(aTerm))
	}
	bTerm := mustStep(t, b, Leader).Term // takes it over at once
	if !b.Trusted(bTerm) || a.Trusted(aTerm) {
		t.Fatalf("after the takeover: b trusted %v, a trusted %v; want only b", b.Trusted(bTerm), a.Trusted(aTerm))
	}
	// a finds its lease lost (and says so), stands again at once, and may
	// not take b's; from then on it is a follower because it is unhealthy.
	for _, want := range []Reason{ReasonLost, ReasonUnhealthy} {
		if got := mustStep(t, a, Follower); got.Reason != want {
			t.Fatalf("a's reason = %q, want %q", got.Reason, want)
		}
	}
	if err := b.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Alone and unhealthy, a leads (nobody else could), for itself only.
	aTerm = mustStep(t, a, Leader).Term
	if !a.Holds(aTerm) || a.Trusted(aTerm) {
		t.Fatalf("a alone, unhealthy: holds %v, trusted %v; want true, false", a.Holds(aTerm), a.Trusted(aTerm))
	}
	// Healthy again, it is trusted and keeps the lease against b.
	setA(true)
	aTerm = mustStep(t, a, Leader).Term
	if !a.Trusted(aTerm) {
		t.Fatal("a, healthy again, is not trusted")
	}
	if got := mustStep(t, b, Follower); got.Reason != ReasonHeld {
		t.Fatalf("b's reason = %q, want %q", got.Reason, ReasonHeld)
	}
}

// Resign frees the lease for the next replica; a stale term is not
// released, even when it is the same leader's.
func TestResignTermScoped(t *testing.T) {
	c := newClock()
	s := newMemStore(c)
	a := newTestElector(t, s, c, "a", nil)
	old := mustStep(t, a, Leader).Term
	c.Advance(time.Second)
	if err := a.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := mustStep(t, a, Leader).Term
	if now.Equal(old) {
		t.Fatal("a new term has the old term's identity")
	}
	if err := s.Release(context.Background(), ReleaseParams{Key: 1, Term: old}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Holder(context.Background(), 1); !l.Term.Equal(now) {
		t.Fatalf("releasing a stale term ended the current one: %+v", l)
	}
	// A cancelled context still releases.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Holder(context.Background(), 1); !l.IsZero() {
		t.Fatalf("lease still held after Resign with a cancelled context: %+v", l)
	}
}

func TestConfigValidation(t *testing.T) {
	s := newMemStore(newClock())
	for name, cfg := range map[string]Config{
		"no ttl":       {Key: 1},
		"margin > ttl": {Key: 1, TTL: time.Second, Margin: 2 * time.Second},
		"backslash id": {Key: 1, TTL: time.Second, LeaderID: `a\b`},
		"control id":   {Key: 1, TTL: time.Second, LeaderID: "a\nb"},
	} {
		var ce *ConfigError
		if _, err := New(s, cfg); !errors.As(err, &ce) {
			t.Errorf("%s: %v, want *ConfigError", name, err)
		}
	}
	if _, err := New(nil, Config{TTL: time.Second}); err == nil {
		t.Error("nil store accepted")
	}
}

// A replica that first sees a lease when its holder has already stopped
// renewing (it started late, or the lease dates from before a restart)
// takes it over TTL after its first sight, never sooner: it cannot know
// when the holder's trust window began.
func TestLateFollowerWaitsTTLFromFirstSight(t *testing.T) {
	c := newClock()
	s := newMemStore(c)
	a := newTestElector(t, s, c, "a", nil)
	mustStep(t, a, Leader)
	c.Advance(3 * ttl) // a dies; its row stays
	b := newTestElector(t, s, c, "b", nil)
	mustStep(t, b, Follower)
	c.Advance(ttl - time.Millisecond)
	mustStep(t, b, Follower)
	c.Advance(time.Millisecond)
	mustStep(t, b, Leader)
}
