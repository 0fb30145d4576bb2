package pgmqclient

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB runs queries. *pgxpool.Pool, *pgx.Conn and pgx.Tx all satisfy it, so a
// Client can work on a pool, on one connection or inside a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Client calls PGMQ's SQL API through a DB. It is safe for concurrent use
// when its DB is (a pool is; a single connection or transaction is not).
type Client struct {
	db DB
	// caps caches what the installed PGMQ offers (see Capabilities): the
	// form of pop, whether send takes headers, the newer operations.
	caps  capsCache
	srv   serverCache // the DB's server address, read once (Server)
	hooks hooks       // set by options, read-only afterwards
}

// New returns a Client that runs every call on db, which must not be nil.
// Options: WithTracer.
func New(db DB, opts ...Option) *Client {
	c := &Client{db: db}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	return c
}

// DB returns the DB the client runs on.
func (c *Client) DB() DB { return c.db }

// seconds converts d to whole seconds for PGMQ's integer arguments,
// rounding up so PGMQ never waits less than asked. what names the argument
// in the error for a negative or too large d.
func seconds(d time.Duration, what string) (int32, error) {
	return ceilUnits(d, time.Second, what)
}

func ceilUnits(d, unit time.Duration, what string) (int32, error) {
	if d < 0 {
		return 0, fmt.Errorf("%w: %s must not be negative, got %v", ErrInvalidArgument, what, d)
	}
	n := d / unit
	if d%unit != 0 {
		n++
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s %v is too large", ErrInvalidArgument, what, d)
	}
	return int32(n), nil
}

// checkQty validates a message quantity for PGMQ's integer argument.
func checkQty(qty int) error {
	if qty < 1 || qty > math.MaxInt32 {
		return fmt.Errorf("%w: quantity must be between 1 and %d, got %d", ErrInvalidArgument, math.MaxInt32, qty)
	}
	return nil
}
