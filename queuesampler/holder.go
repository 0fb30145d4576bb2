package queuesampler

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/queuesampler/internal/election"
)

// Lease is who holds an election lease, until when on the database's
// clock, and since when (the term's start).
type Lease struct {
	LeaderID  string
	ElectedAt time.Time
	ExpiresAt time.Time
}

// IsZero reports whether no one holds the lease.
func (l Lease) IsZero() bool { return l.LeaderID == "" }

// LeaseHolder reads the unexpired lease of election key from the database
// conn reaches (the zero Lease when it is free), for operators asking
// which replica samples now, and for tests.
func LeaseHolder(ctx context.Context, conn *pgx.Conn, key int64) (Lease, error) {
	l, err := election.NewPostgres(election.PgConnQueryer{Conn: conn.PgConn()}, election.WithCreateTable(false)).Holder(ctx, key)
	if err != nil {
		return Lease{}, err
	}
	return Lease{LeaderID: l.LeaderID, ElectedAt: l.ElectedAt, ExpiresAt: l.ExpiresAt}, nil
}
