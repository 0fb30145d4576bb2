package election

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// connect opens a connection that speaks only the simple protocol, as the
// store does, and closes it at the end of the test.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	return conn
}

func store(t *testing.T, dsn string, opts ...PostgresOption) *Postgres {
	t.Helper()
	return NewPostgres(PgConnQueryer{connect(t, dsn).PgConn()}, opts...)
}

// exerciseStore is the conformance suite of the PostgreSQL store: two
// stores on two connections to the same database compete for one key.
func exerciseStore(t *testing.T, a, b Store) {
	ctx := context.Background()
	key := time.Now().UnixNano() // a key of its own: the table outlives the call
	const ttl = 2 * time.Second
	la, err := a.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "a", TTL: ttl})
	if err != nil {
		t.Fatalf("a acquires a free lease: %v", err)
	}
	if _, err := b.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "b", TTL: ttl}); !errors.Is(err, ErrHeld) {
		t.Fatalf("b acquires a held lease: %v, want ErrHeld", err)
	}
	if _, err := b.TryAcquire(ctx, AcquireParams{Key: key + 1, LeaderID: "b", TTL: ttl}); err != nil {
		t.Fatalf("another key is free: %v", err)
	}
	h, err := b.Holder(ctx, key)
	if err != nil || !h.Term.Equal(la.Term) {
		t.Fatalf("Holder = %+v, %v; want %+v", h, err, la.Term)
	}
	renewed, err := a.Renew(ctx, RenewParams{Key: key, Term: la.Term, TTL: ttl})
	if err != nil || !renewed.Term.Equal(la.Term) || renewed.ExpiresAt.Before(la.ExpiresAt) {
		t.Fatalf("renew: %+v, %v", renewed, err)
	}
	if _, err := b.Renew(ctx, RenewParams{Key: key, Term: Term{LeaderID: "b", ElectedAt: la.ElectedAt}, TTL: ttl}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("b renews a's lease: %v, want ErrLeaseLost", err)
	}
	// A stale term of the same leader neither renews nor releases.
	stale := Term{LeaderID: "a", ElectedAt: la.ElectedAt.Add(-time.Microsecond)}
	if _, err := a.Renew(ctx, RenewParams{Key: key, Term: stale, TTL: ttl}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale renew: %v, want ErrLeaseLost", err)
	}
	if err := a.Release(ctx, ReleaseParams{Key: key, Term: stale}); err != nil {
		t.Fatal(err)
	}
	if h, _ := b.Holder(ctx, key); !h.Term.Equal(la.Term) {
		t.Fatalf("a stale release ended the term: %+v", h)
	}
	// Released, the lease is b's at once.
	if err := a.Release(ctx, ReleaseParams{Key: key, Term: la.Term}); err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "b", TTL: time.Millisecond})
	if err != nil {
		t.Fatalf("b after a's release: %v", err)
	}
	// Past its expiry on the database's clock, b's lease is still held:
	// only a candidate that saw the same row TTL ago may take it.
	time.Sleep(20 * time.Millisecond)
	seen, err := a.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "a", TTL: ttl})
	if !errors.Is(err, ErrHeld) || !seen.Same(lb) {
		t.Fatalf("a against b's lease past its expiry: %+v, %v; want ErrHeld and b's lease", seen, err)
	}
	// b renews: the row a saw is gone, so a's claim that it is stale fails.
	lb2, err := b.Renew(ctx, RenewParams{Key: key, Term: lb.Term, TTL: ttl})
	if err != nil {
		t.Fatalf("b renews its lease past its expiry, nobody having taken it: %v", err)
	}
	if got, err := a.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "a", TTL: ttl, Stale: seen}); !errors.Is(err, ErrHeld) || !got.Same(lb2) {
		t.Fatalf("a claims a lease renewed since it saw it: %+v, %v; want ErrHeld and the renewed lease", got, err)
	}
	// b renews no more: the row a saw last is stale, and a takes it.
	if _, err := a.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "a", TTL: ttl, Stale: lb2}); err != nil {
		t.Fatalf("a takes the stale lease: %v", err)
	}
	if _, err := b.Renew(ctx, RenewParams{Key: key, Term: lb.Term, TTL: ttl}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("b renews a retaken lease: %v", err)
	}
}

func TestPostgresStoreDirect(t *testing.T) {
	db := pgmqtest.New(t)
	exerciseStore(t, store(t, db.URL), store(t, db.URL))
}

// Through PgBouncer in transaction mode, with the two stores' calls served
// by whichever server connection is free, and in session mode.
func TestPostgresStoreThroughPgBouncer(t *testing.T) {
	db := pgmqtest.New(t)
	u, _ := url.Parse(db.URL)
	for _, mode := range []string{pgbouncer.Transaction, pgbouncer.Session} {
		t.Run(mode, func(t *testing.T) {
			// One server connection in transaction mode: both stores' calls
			// share it, as replicas share a pooler's few connections.
			size := map[string]string{pgbouncer.Transaction: "1", pgbouncer.Session: "2"}[mode]
			b := pgbouncer.Start(t, pgbouncer.Options{Target: u.Host, Mode: mode, Settings: map[string]string{"default_pool_size": size}})
			dsn := b.URL("", "", db.Name)
			exerciseStore(t, store(t, dsn), store(t, dsn))
		})
	}
}

// The table is created at the first call when the role may, and a role
// that may not gets ErrNotInstalled, before and after it exists.
func TestPostgresStoreInstall(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	for _, sql := range []string{
		"DROP ROLE IF EXISTS pgmqotel_election_test",
		"CREATE ROLE pgmqotel_election_test LOGIN",
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pgmqotel_election_test'")
		_, _ = db.Pool.Exec(context.Background(), "DROP OWNED BY pgmqotel_election_test")
		_, _ = db.Pool.Exec(context.Background(), "DROP ROLE pgmqotel_election_test")
	})
	u, _ := url.Parse(db.URL)
	u.User = url.User("pgmqotel_election_test")
	weak := store(t, u.String())
	if _, err := weak.TryAcquire(ctx, AcquireParams{Key: 1, LeaderID: "weak", TTL: time.Second}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("unprivileged role, no table: %v, want ErrNotInstalled", err)
	}
	noCreate := store(t, db.URL, WithCreateTable(false))
	if _, err := noCreate.TryAcquire(ctx, AcquireParams{Key: 1, LeaderID: "x", TTL: time.Second}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("WithCreateTable(false), no table: %v, want ErrNotInstalled", err)
	}
	if _, err := store(t, db.URL).TryAcquire(ctx, AcquireParams{Key: 1, LeaderID: "owner", TTL: time.Second}); err != nil {
		t.Fatalf("superuser, no table: %v", err)
	}
	if _, err := weak.TryAcquire(ctx, AcquireParams{Key: 2, LeaderID: "weak", TTL: time.Second}); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("unprivileged role, table without grant: %v, want ErrNotPermitted", err)
	}
	if _, err := db.Pool.Exec(ctx, PostgresGrantSQL("pgmqotel_election_test")); err != nil {
		t.Fatal(err)
	}
	if _, err := weak.TryAcquire(ctx, AcquireParams{Key: 2, LeaderID: "weak", TTL: time.Second}); err != nil {
		t.Fatalf("unprivileged role after the grant: %v", err)
	}
}

// A lease table created by the release before the healthy column (the
// same DDL without it) is brought up to date at the first call, its row
// kept; without that every call failed with "column healthy does not
// exist" and no replica ever sampled.
func TestPostgresStoreUpgradesEarlierTable(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	const earlier = `CREATE SCHEMA IF NOT EXISTS pgmqotel;
CREATE UNLOGGED TABLE IF NOT EXISTS pgmqotel.election_lease (
	key        bigint PRIMARY KEY,
	leader_id  text NOT NULL,
	elected_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
INSERT INTO pgmqotel.election_lease VALUES (7, 'old', now(), now() + interval '1 hour');`
	if _, err := db.Pool.Exec(ctx, earlier); err != nil {
		t.Fatal(err)
	}
	if _, err := store(t, db.URL, WithCreateTable(false)).TryAcquire(ctx, AcquireParams{Key: 1, LeaderID: "a", TTL: time.Second}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("earlier table, WithCreateTable(false): %v, want ErrNotInstalled", err)
	}
	s := store(t, db.URL)
	if _, err := s.TryAcquire(ctx, AcquireParams{Key: 1, LeaderID: "a", TTL: time.Second, Healthy: true}); err != nil {
		t.Fatalf("earlier table: %v", err)
	}
	if _, err := s.TryAcquire(ctx, AcquireParams{Key: 7, LeaderID: "a", TTL: time.Second, Healthy: true}); !errors.Is(err, ErrHeld) {
		t.Fatalf("the earlier release's lease was not kept: %v, want ErrHeld", err)
	}
}

// The takeover rule on the real table: a healthy replica takes a lease
// written unhealthy at once, an unhealthy one never takes a healthy lease.
func TestPostgresStoreUnhealthyLeaseTakenOver(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	s := store(t, db.URL)
	const key, ttl = 1, time.Hour
	la, err := s.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "a", TTL: ttl, Healthy: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "b", TTL: ttl, Healthy: true}); !errors.Is(err, ErrHeld) {
		t.Fatalf("b against a's healthy lease: %v, want ErrHeld", err)
	}
	if _, err := s.Renew(ctx, RenewParams{Key: key, Term: la.Term, TTL: ttl, Healthy: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "c", TTL: ttl, Healthy: false}); !errors.Is(err, ErrHeld) {
		t.Fatalf("unhealthy c against a's unhealthy lease: %v, want ErrHeld", err)
	}
	if _, err := s.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "b", TTL: ttl, Healthy: true}); err != nil {
		t.Fatalf("healthy b against a's unhealthy lease: %v", err)
	}
	if _, err := s.TryAcquire(ctx, AcquireParams{Key: key, LeaderID: "c", TTL: ttl, Healthy: false}); !errors.Is(err, ErrHeld) {
		t.Fatalf("unhealthy c against b's healthy lease: %v, want ErrHeld", err)
	}
	if _, err := s.Renew(ctx, RenewParams{Key: key, Term: la.Term, TTL: ttl, Healthy: true}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a renews after the takeover: %v, want ErrLeaseLost", err)
	}
}

// On a hot standby no lease can be taken: ErrReadOnly, with or without the
// table replicated from the primary.
func TestPostgresStoreStandbyIsReadOnly(t *testing.T) {
	primary := pgcluster.Start(t, pgcluster.Options{})
	if _, err := store(t, primary.URL("")).TryAcquire(context.Background(), AcquireParams{Key: 1, LeaderID: "p", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	standby := primary.Standby(t, pgcluster.Options{})
	standby.WaitReplayed(t, primary)
	s := store(t, standby.URL(""))
	if _, err := s.TryAcquire(context.Background(), AcquireParams{Key: 1, LeaderID: "s", TTL: time.Minute}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("acquire on a standby: %v, want ErrReadOnly", err)
	}
	if _, err := s.TryAcquire(context.Background(), AcquireParams{Key: 2, LeaderID: "s", TTL: time.Minute}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("acquire of a new key on a standby: %v, want ErrReadOnly", err)
	}
}
