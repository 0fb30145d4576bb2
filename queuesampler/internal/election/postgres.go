package election

// This file holds every statement of the lease. Each call sends one
// simple-protocol query string: one implicit transaction that sets its own
// timeouts with SET LOCAL, so it needs no session state, no startup
// parameter and no prepared statement, and runs the same directly, through
// PgBouncer in session or transaction mode, or on a standby (where it is
// refused). Values reach the SQL as integer literals or quoted literals of
// validated text, never as identifiers.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresTable is the lease table, one row per election key. It is
// UNLOGGED: a crash or a failover empties it, and the replicas simply elect
// again.
const PostgresTable = "pgmqotel.election_lease"

// PostgresDDL creates the lease table, or brings one created by an earlier
// release up to date (the healthy column). Run it once, in a migration, as
// a role allowed to create a schema; or let the store run it at the first
// election when the electing role may. It is idempotent.
const PostgresDDL = `CREATE SCHEMA IF NOT EXISTS pgmqotel;
CREATE UNLOGGED TABLE IF NOT EXISTS pgmqotel.election_lease (
	key        bigint PRIMARY KEY,
	leader_id  text NOT NULL,
	elected_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	healthy    boolean NOT NULL DEFAULT true
);
ALTER TABLE pgmqotel.election_lease ADD COLUMN IF NOT EXISTS healthy boolean NOT NULL DEFAULT true;`

// PostgresGrantSQL returns the statements that let role (a plain name,
// quoted here) take part in elections when another role created the table.
func PostgresGrantSQL(role string) string {
	r := `"` + strings.ReplaceAll(role, `"`, `""`) + `"`
	return "GRANT USAGE ON SCHEMA pgmqotel TO " + r + ";\n" +
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + PostgresTable + " TO " + r + ";"
}

// SimpleQueryer runs one simple-protocol query string, which may hold
// several statements, and returns every statement's result. A
// *pgconn.PgConn does so with PgConnQueryer.
type SimpleQueryer interface {
	SimpleQuery(ctx context.Context, sql string) ([]*pgconn.Result, error)
}

// PgConnQueryer adapts a *pgconn.PgConn.
type PgConnQueryer struct{ Conn *pgconn.PgConn }

// SimpleQuery implements SimpleQueryer.
func (q PgConnQueryer) SimpleQuery(ctx context.Context, sql string) ([]*pgconn.Result, error) {
	return q.Conn.Exec(ctx, sql).ReadAll()
}

// Postgres is the PostgreSQL Store.
type Postgres struct {
	db      SimpleQueryer
	timeout time.Duration
	install bool
	skew    func() time.Duration // added to now() in every statement; nil: none
}

// PostgresOption configures NewPostgres.
type PostgresOption func(*Postgres)

// WithStatementTimeout sets the server-side statement and lock timeout of
// each call (default 2s). Non-positive values are ignored.
func WithStatementTimeout(d time.Duration) PostgresOption {
	return func(p *Postgres) {
		if d > 0 {
			p.timeout = d
		}
	}
}

// WithCreateTable sets whether a missing lease table is created (default
// true). When false, or when the role may not create it, calls fail with
// ErrNotInstalled.
func WithCreateTable(create bool) PostgresOption {
	return func(p *Postgres) { p.install = create }
}

// WithClockSkew shifts the database's clock, as every statement of the
// store reads it, by what skew returns at each call: the way tests step
// the database host's clock without touching the host. Nil is ignored.
func WithClockSkew(skew func() time.Duration) PostgresOption {
	return func(p *Postgres) {
		if skew != nil {
			p.skew = skew
		}
	}
}

// NewPostgres returns a store running on db.
func NewPostgres(db SimpleQueryer, opts ...PostgresOption) *Postgres {
	p := &Postgres{db: db, timeout: 2 * time.Second, install: true}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p
}

// leaseColumns returns the lease as text-format integers, immune to the
// session's DateStyle and TimeZone.
const leaseColumns = `leader_id,
	(extract(epoch FROM elected_at) * 1000000)::bigint,
	(extract(epoch FROM expires_at) * 1000000)::bigint`

// TryAcquire implements Store. pg_is_in_recovery() comes first, so a
// standby answers ErrReadOnly however its refusal of the write is worded.
// The lease's row is read again after the upsert, in the same transaction,
// so a candidate that does not get it learns what it saw.
func (p *Postgres) TryAcquire(ctx context.Context, a AcquireParams) (Lease, error) {
	if err := ValidateLeaderID(a.LeaderID); err != nil {
		return Lease{}, err
	}
	if a.TTL <= 0 {
		return Lease{}, &ConfigError{Field: "TTL", Reason: "must be positive"}
	}
	stale := ""
	if !a.Stale.IsZero() {
		if err := ValidateLeaderID(a.Stale.LeaderID); err != nil {
			return Lease{}, err
		}
		stale = " OR (" + leaseMatch("l.", a.Stale) + ")"
	}
	now := p.now()
	sql := `SELECT pg_is_in_recovery();` + p.local() + `
INSERT INTO ` + PostgresTable + ` AS l (key, leader_id, elected_at, expires_at, healthy)
VALUES (` + itoa(a.Key) + `, ` + literal(a.LeaderID) + `, ` + now + `, ` + now + ` + ` + millis(a.TTL) + `, ` + boolean(a.Healthy) + `)
ON CONFLICT (key) DO UPDATE
	SET leader_id = excluded.leader_id, elected_at = excluded.elected_at,
		expires_at = excluded.expires_at, healthy = excluded.healthy
	WHERE l.leader_id = excluded.leader_id OR (excluded.healthy AND NOT l.healthy)` + stale + `
RETURNING ` + leaseColumns + `;
SELECT ` + leaseColumns + ` FROM ` + PostgresTable + ` WHERE key = ` + itoa(a.Key)
	res, err := p.run(ctx, "acquire", sql)
	if err != nil {
		return Lease{}, err
	}
	if len(res) < 2 {
		return Lease{}, errors.New("election: acquire: no result")
	}
	lease, ok, err := lastLease(res[:len(res)-1])
	if err != nil || ok {
		return lease, err
	}
	held, _, err := lastLease(res)
	if err != nil {
		return Lease{}, err
	}
	return held, ErrHeld
}

// Renew implements Store.
func (p *Postgres) Renew(ctx context.Context, r RenewParams) (Lease, error) {
	if err := ValidateLeaderID(r.Term.LeaderID); err != nil {
		return Lease{}, err
	}
	sql := p.local() + `
UPDATE ` + PostgresTable + ` SET expires_at = ` + p.now() + ` + ` + millis(r.TTL) + `, healthy = ` + boolean(r.Healthy) + `
WHERE ` + termMatch(r.Key, r.Term) + `
RETURNING ` + leaseColumns
	res, err := p.run(ctx, "renew", sql)
	if err != nil {
		return Lease{}, err
	}
	lease, ok, err := lastLease(res)
	if err != nil {
		return Lease{}, err
	}
	if !ok {
		return Lease{}, ErrLeaseLost
	}
	return lease, nil
}

// Release implements Store.
func (p *Postgres) Release(ctx context.Context, r ReleaseParams) error {
	if err := ValidateLeaderID(r.Term.LeaderID); err != nil {
		return err
	}
	_, err := p.run(ctx, "release", p.local()+`
DELETE FROM `+PostgresTable+` WHERE `+termMatch(r.Key, r.Term))
	return err
}

// Holder implements Store.
func (p *Postgres) Holder(ctx context.Context, key int64) (Lease, error) {
	res, err := p.run(ctx, "holder", p.local()+`
SELECT `+leaseColumns+` FROM `+PostgresTable+` WHERE key = `+itoa(key)+` AND expires_at > `+p.now())
	if err != nil {
		return Lease{}, err
	}
	lease, _, err := lastLease(res)
	return lease, err
}

// Install creates the lease table (PostgresDDL) on db. It answers
// ErrNotInstalled, wrapping the server's refusal, when the role may not.
func Install(ctx context.Context, db SimpleQueryer) error {
	_, err := db.SimpleQuery(ctx, `SET LOCAL lock_timeout = 5000;`+PostgresDDL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "42P06", "42P07": // created concurrently by another replica
			return nil
		case "25006":
			return fmt.Errorf("election: install: %w: %w", ErrReadOnly, err)
		case "42501":
			return fmt.Errorf("election: install %s: %w: %w", PostgresTable, ErrNotInstalled, err)
		}
	}
	if err != nil {
		return fmt.Errorf("election: install %s: %w", PostgresTable, err)
	}
	return nil
}

// now is the database's clock in a statement: now(), the start of the
// call's transaction, shifted by the test's skew if any.
func (p *Postgres) now() string {
	if p.skew == nil {
		return "now()"
	}
	return "(now() + " + itoa(p.skew().Microseconds()) + " * interval '1 microsecond')"
}

// local sets the call's timeouts for its implicit transaction only.
func (p *Postgres) local() string {
	ms := strconv.FormatInt(max(p.timeout.Milliseconds(), 1), 10)
	return "\nSET LOCAL statement_timeout = " + ms + ";\nSET LOCAL lock_timeout = " + ms + ";"
}

// run sends sql, creating the table once when it is missing, and
// translates the server's errors into the sentinels.
func (p *Postgres) run(ctx context.Context, op, sql string) ([]*pgconn.Result, error) {
	res, err := p.db.SimpleQuery(ctx, sql)
	if op == "acquire" && len(res) > 0 && recovering(res[0]) {
		return nil, fmt.Errorf("election: %s: %w", op, ErrReadOnly)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P01", "3F000", "42703": // undefined_table, invalid_schema_name, undefined_column (a table from an earlier release)
			if !p.install {
				return nil, fmt.Errorf("election: %s: %w: %w", op, ErrNotInstalled, err)
			}
			if ierr := Install(ctx, p.db); ierr != nil {
				return nil, fmt.Errorf("election: %s: %w", op, ierr)
			}
			res, err = p.db.SimpleQuery(ctx, sql)
		}
	}
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "25006": // read_only_sql_transaction
			return nil, fmt.Errorf("election: %s: %w: %w", op, ErrReadOnly, err)
		case "42501": // insufficient_privilege, on the table or its schema
			return nil, fmt.Errorf("election: %s: %w: %w", op, ErrNotPermitted, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("election: %s: %w", op, err)
	}
	return res, nil
}

func recovering(r *pgconn.Result) bool {
	return len(r.Rows) == 1 && len(r.Rows[0]) == 1 && string(r.Rows[0][0]) == "t"
}

// lastLease reads the lease row of the last statement's result, if any.
func lastLease(res []*pgconn.Result) (Lease, bool, error) {
	if len(res) == 0 {
		return Lease{}, false, errors.New("election: no result")
	}
	rows := res[len(res)-1].Rows
	if len(rows) == 0 {
		return Lease{}, false, nil
	}
	row := rows[0]
	if len(row) != 3 {
		return Lease{}, false, fmt.Errorf("election: lease row has %d columns", len(row))
	}
	elected, err1 := strconv.ParseInt(string(row[1]), 10, 64)
	expires, err2 := strconv.ParseInt(string(row[2]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Lease{}, false, fmt.Errorf("election: read lease: %w", err)
	}
	return Lease{
		Term:      Term{LeaderID: string(row[0]), ElectedAt: time.UnixMicro(elected).UTC()},
		ExpiresAt: time.UnixMicro(expires).UTC(),
	}, true, nil
}

// termMatch selects the row of key held in term.
func termMatch(key int64, t Term) string {
	return "key = " + itoa(key) + " AND leader_id = " + literal(t.LeaderID) + " AND elected_at = " + micros(t.ElectedAt)
}

// leaseMatch says that the row (its columns prefixed with prefix) is
// still l, as written by the same acquisition or renewal.
func leaseMatch(prefix string, l Lease) string {
	return prefix + "leader_id = " + literal(l.LeaderID) +
		" AND " + prefix + "elected_at = " + micros(l.ElectedAt) +
		" AND " + prefix + "expires_at = " + micros(l.ExpiresAt)
}

// micros renders t as a timestamptz to the microsecond, whatever the
// session's TimeZone and DateStyle.
func micros(t time.Time) string {
	return "timestamptz 'epoch' + " + itoa(t.UnixMicro()) + " * interval '1 microsecond'"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func millis(d time.Duration) string {
	return itoa(max(d.Milliseconds(), 1)) + " * interval '1 millisecond'"
}

// literal quotes s as a string literal. Leader ids are validated printable
// text without backslashes, so the literal reads the same whatever
// standard_conforming_strings says.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// boolean renders b as an SQL literal.
func boolean(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
