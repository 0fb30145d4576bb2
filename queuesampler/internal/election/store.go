package election

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of a Store. Stores wrap them, so test with errors.Is.
var (
	// ErrHeld: another leader holds the lease.
	ErrHeld = errors.New("election: lease held by another leader")
	// ErrLeaseLost: the term renewed or released is no longer the lease's:
	// another leader acquired it since, or it was released.
	ErrLeaseLost = errors.New("election: lease lost")
	// ErrReadOnly: the database accepts no writes (a hot standby, or a
	// read-only session), so no lease can be taken there.
	ErrReadOnly = errors.New("election: database is read-only (hot standby?)")
	// ErrNotInstalled: the lease table is missing and could not be created
	// with the connecting role's privileges. Run PostgresDDL once as a role
	// that may, and grant the electing role access (see PostgresGrantSQL).
	ErrNotInstalled = errors.New("election: lease table missing and not creatable by this role")
	// ErrNotPermitted: the lease table is there but the electing role may
	// not use it (a missing grant: see PostgresGrantSQL).
	ErrNotPermitted = errors.New("election: the electing role may not use the lease table")
)

// Term identifies one leadership: who was elected, and when on the
// database's clock. Two terms of the same leader differ by ElectedAt.
type Term struct {
	LeaderID  string
	ElectedAt time.Time
}

// IsZero reports whether t is no term.
func (t Term) IsZero() bool { return t.LeaderID == "" }

// Lease is a term with its expiry on the database's clock. ExpiresAt is
// rewritten at every renewal, so a lease read twice with the same
// (term, ExpiresAt) was not renewed in between (Same).
type Lease struct {
	Term
	ExpiresAt time.Time
}

// Same reports whether l and m are the same row as written by the same
// acquisition or renewal.
func (l Lease) Same(m Lease) bool {
	return l.Term.Equal(m.Term) && l.ExpiresAt.Equal(m.ExpiresAt)
}

// AcquireParams asks for the lease of Key for LeaderID for TTL. Healthy
// says whether the candidate is fit to lead (its exports work): a healthy
// candidate may also take a lease whose holder is unhealthy, an unhealthy
// one only a free or stale lease. Stale, when not zero, is the holder's
// lease as the candidate read it at least TTL ago on its own clock: if the
// row is still exactly that, its holder has not renewed for TTL and the
// lease is taken.
type AcquireParams struct {
	Key      int64
	LeaderID string
	TTL      time.Duration
	Healthy  bool
	Stale    Lease
}

// RenewParams extends Term's lease of Key by TTL from the database's now,
// recording whether the leader is Healthy (an unhealthy leader's lease can
// be taken by a healthy candidate at any time).
type RenewParams struct {
	Key     int64
	Term    Term
	TTL     time.Duration
	Healthy bool
}

// ReleaseParams ends Term's lease of Key, if it is still Term's.
type ReleaseParams struct {
	Key  int64
	Term Term
}

// Store keeps the lease. Each method is one short, self-contained
// operation; implementations keep no state between calls that a pooler
// could mix up.
type Store interface {
	// TryAcquire takes the lease when it is free, when its row is still
	// p.Stale, when its holder is p.LeaderID, or, for a healthy candidate,
	// when its holder is unhealthy, starting a new term. Whether a lease
	// expired on the database's clock does not matter. Otherwise it
	// returns the holder's lease, as read now, with ErrHeld.
	TryAcquire(ctx context.Context, p AcquireParams) (Lease, error)
	// Renew extends p.Term's lease; ErrLeaseLost when it is not its own
	// (another replica took it since, or it was released).
	Renew(ctx context.Context, p RenewParams) (Lease, error)
	// Release ends p.Term's lease; it returns nil when the term had already
	// ended.
	Release(ctx context.Context, p ReleaseParams) error
	// Holder returns the unexpired lease of key, or the zero Lease.
	Holder(ctx context.Context, key int64) (Lease, error)
}
