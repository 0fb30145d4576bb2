package election

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// State is an elector's state.
type State int

// States of an elector.
const (
	Follower State = iota
	Leader
)

// String implements fmt.Stringer.
func (s State) String() string {
	if s == Leader {
		return "leader"
	}
	return "follower"
}

// Reason says why a Step left the elector a follower.
type Reason string

// Reasons for being a follower.
const (
	ReasonNone      Reason = ""          // leader
	ReasonHeld      Reason = "held"      // another replica leads
	ReasonLost      Reason = "lost"      // the term ended: the lease expired or was taken
	ReasonUnhealthy Reason = "unhealthy" // the health predicate is false, and another replica leads
	ReasonReadOnly  Reason = "read_only" // the database is a hot standby or read-only
	ReasonError     Reason = "error"     // the store failed; see the error
	ReasonResigned  Reason = "resigned"  // Resign was called
	ReasonUntrusted Reason = "untrusted" // the trust window ran out before the store answered
)

// Status is the outcome of a Step.
type Status struct {
	State  State
	Term   Term   // the term led; zero for a follower
	Reason Reason // why a follower; empty for a leader
}

// Config configures an Elector.
type Config struct {
	// Key names the election: electors with the same key elect one leader.
	Key int64
	// LeaderID identifies this elector in the lease; empty picks
	// NewLeaderID(). At most 200 printable characters.
	LeaderID string
	// TTL is the lease's lifetime from each acquisition or renewal. Step
	// must be called more often than every TTL to keep leading.
	TTL time.Duration
	// Margin is taken off the trust window for clock rate differences and
	// scheduling; zero means TTL/5. Must be below TTL.
	Margin time.Duration
	// Healthy, when not nil, says whether this replica is fit to lead
	// (for example, its exports succeed). A healthy follower takes over
	// the lease of an unhealthy leader at its next Step; an unhealthy one
	// takes only a free or expired lease.
	Healthy func() bool
	// Now is the local clock; it must carry a monotonic reading. Nil means
	// time.Now.
	Now func() time.Time
}

// ConfigError reports an invalid Config.
type ConfigError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("election: invalid %s: %s", e.Field, e.Reason)
}

// Elector takes part in one election. It is driven by its owner's calls to
// Step and is safe for concurrent use; Steps run one at a time.
type Elector struct {
	store Store
	cfg   Config

	step sync.Mutex // serialises Step and Resign

	mu         sync.Mutex
	term       Term // zero while follower
	trustUntil time.Time
	exclusive  bool // every write of the lease that may have committed said healthy: no takeover by health
	last       Status

	// While follower (guarded by step): the holder's lease as last read,
	// and when this elector read it first (the end of that attempt, on
	// the local clock).
	seen   Lease
	seenAt time.Time
}

// New returns an elector in the follower state. It performs no I/O.
func New(store Store, cfg Config) (*Elector, error) {
	if store == nil {
		return nil, &ConfigError{Field: "store", Reason: "nil"}
	}
	if cfg.LeaderID == "" {
		cfg.LeaderID = NewLeaderID()
	}
	if err := ValidateLeaderID(cfg.LeaderID); err != nil {
		return nil, err
	}
	if cfg.TTL <= 0 {
		return nil, &ConfigError{Field: "TTL", Reason: "must be positive"}
	}
	if cfg.Margin == 0 {
		cfg.Margin = cfg.TTL / 5
	}
	if cfg.Margin < 0 || cfg.Margin >= cfg.TTL {
		return nil, &ConfigError{Field: "Margin", Reason: "must be between 0 and TTL"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Elector{store: store, cfg: cfg}, nil
}

// ValidateLeaderID checks a leader id: 1 to 200 bytes of printable UTF-8
// without backslashes.
func ValidateLeaderID(id string) error {
	if id == "" || len(id) > 200 {
		return &ConfigError{Field: "LeaderID", Reason: "must be 1 to 200 bytes"}
	}
	if !utf8.ValidString(id) {
		return &ConfigError{Field: "LeaderID", Reason: "must be UTF-8"}
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || r == '\\' {
			return &ConfigError{Field: "LeaderID", Reason: "must be printable, without backslashes"}
		}
	}
	return nil
}

// NewLeaderID returns host/pid/random, unique to the elector and readable
// in the lease table.
func NewLeaderID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	id := host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
	if len(id) > 200 {
		id = id[len(id)-200:]
	}
	return id
}

// LeaderID returns this elector's id.
func (e *Elector) LeaderID() string { return e.cfg.LeaderID }

// Status returns the outcome of the last Step.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// Trusted reports whether work done in term may be reported now: term is
// this elector's current term, its trust window has not run out, and its
// lease was last written healthy. A lease written unhealthy may be taken
// over by a healthy replica at any moment, long before it expires, so the
// window proves nothing about who else leads: the term is held (Holds)
// but not trusted until a renewal writes the lease healthy again.
func (e *Elector) Trusted(term Term) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holdsLocked(term) && e.exclusive
}

// Holds reports whether term is this elector's current term and its trust
// window has not run out, healthy or not: the leader's own view, for
// in-process readers, never for reporting to a backend.
func (e *Elector) Holds(term Term) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holdsLocked(term)
}

func (e *Elector) holdsLocked(term Term) bool {
	return !term.IsZero() && e.term.Equal(term) && e.cfg.Now().Before(e.trustUntil)
}

// Equal reports whether t and u are the same term.
func (t Term) Equal(u Term) bool {
	return t.LeaderID == u.LeaderID && t.ElectedAt.Equal(u.ElectedAt)
}

// Step advances the election once: a leader renews its lease, a follower
// tries to acquire it, each saying whether it is healthy. The error is the
// store's, for the owner to count; the Status says where the elector
// stands either way.
func (e *Elector) Step(ctx context.Context) (Status, error) {
	e.step.Lock()
	defer e.step.Unlock()
	st, err := e.stepLocked(ctx)
	e.mu.Lock()
	e.last = st
	e.mu.Unlock()
	return st, err
}

func (e *Elector) stepLocked(ctx context.Context) (Status, error) {
	start := e.cfg.Now()
	healthy := e.cfg.Healthy == nil || e.cfg.Healthy()
	e.mu.Lock()
	term := e.term
	e.mu.Unlock()

	lost := false
	if !term.IsZero() {
		// An unhealthy leader goes on leading, its lease marked unhealthy,
		// so a healthy replica takes it over at its next attempt; a lone
		// replica keeps sampling for its in-process readers. The term
		// stops being trusted before the renewal is sent: it may commit
		// even when its answer is lost, and from that commit on a healthy
		// replica may take the lease.
		if !healthy {
			e.mu.Lock()
			e.exclusive = false
			e.mu.Unlock()
		}
		lease, err := e.store.Renew(ctx, RenewParams{Key: e.cfg.Key, Term: term, TTL: e.cfg.TTL, Healthy: healthy})
		switch {
		case err == nil:
			return e.lead(lease.Term, start, healthy), nil
		case errors.Is(err, ErrLeaseLost):
			e.follow(ReasonLost)
			lost = true
			// The lease may be free: stand again at once.
		case errors.Is(err, ErrReadOnly):
			// The server became a standby under us (a failover).
			return e.follow(ReasonReadOnly), err
		default:
			// The store could not answer: the term lasts while held (and
			// stays trusted only if no write that may have committed marked
			// the lease unhealthy).
			if e.Holds(term) {
				return Status{State: Leader, Term: term}, err
			}
			return e.follow(ReasonUntrusted), err
		}
	}
	// The holder's lease is stale once this elector has seen the same row
	// for TTL on its own clock: its holder, whose trust window ends TTL -
	// Margin after a renewal that started before that row was read, has
	// stopped trusting its term by then, whatever the database's clock did.
	var stale Lease
	if !e.seen.IsZero() && start.Sub(e.seenAt) >= e.cfg.TTL {
		stale = e.seen
	}
	lease, err := e.store.TryAcquire(ctx, AcquireParams{Key: e.cfg.Key, LeaderID: e.cfg.LeaderID, TTL: e.cfg.TTL, Healthy: healthy, Stale: stale})
	if errors.Is(err, ErrHeld) && !lease.Same(e.seen) {
		e.seen, e.seenAt = lease, e.cfg.Now()
	}
	switch {
	case err == nil:
		e.seen, e.seenAt = Lease{}, time.Time{}
		return e.lead(lease.Term, start, healthy), nil
	case errors.Is(err, ErrHeld) && lost:
		return e.follow(ReasonLost), nil // says why this replica no longer leads
	case errors.Is(err, ErrHeld) && !healthy:
		return e.follow(ReasonUnhealthy), nil
	case errors.Is(err, ErrHeld):
		return e.follow(ReasonHeld), nil
	case errors.Is(err, ErrReadOnly):
		return e.follow(ReasonReadOnly), err
	default:
		return e.follow(ReasonError), err
	}
}

// lead records term as current, held until start + TTL - Margin, and
// whether its lease was just written healthy.
func (e *Elector) lead(term Term, start time.Time, healthy bool) Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.term = term
	e.trustUntil = start.Add(e.cfg.TTL - e.cfg.Margin)
	e.exclusive = healthy
	return Status{State: Leader, Term: term}
}

func (e *Elector) follow(r Reason) Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.term, e.trustUntil, e.exclusive = Term{}, time.Time{}, false
	return Status{State: Follower, Reason: r}
}

// release ends term in the store, detached from ctx's cancellation (a
// shutting-down owner still wants the lease freed) but within ctx's
// deadline or, without one, the TTL. If it fails the lease expires.
func (e *Elector) release(ctx context.Context, term Term) error {
	rctx := context.WithoutCancel(ctx)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(e.cfg.TTL)
	}
	rctx, cancel := context.WithDeadline(rctx, deadline)
	defer cancel()
	err := e.store.Release(rctx, ReleaseParams{Key: e.cfg.Key, Term: term})
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("election: release: %w", err)
	}
	return nil
}

// Resign ends this elector's term, if any, and leaves it a follower. The
// release is not cancelled with ctx, only bounded by its deadline (or the
// TTL); when it fails the lease expires after TTL anyway.
func (e *Elector) Resign(ctx context.Context) error {
	e.step.Lock()
	defer e.step.Unlock()
	e.mu.Lock()
	term := e.term
	e.mu.Unlock()
	st := e.follow(ReasonResigned)
	e.mu.Lock()
	e.last = st
	e.mu.Unlock()
	if term.IsZero() {
		return nil
	}
	return e.release(ctx, term)
}
