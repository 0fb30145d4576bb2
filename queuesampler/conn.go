package queuesampler

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppName is the application_name of the sampler's connection, a startup
// parameter every pooler accepts.
const AppName = "pgmqotel-queue-sampler"

// errNotConnected is returned by a sampler connection used before it has
// connected.
var errNotConnected = errors.New("queuesampler: not connected")

// conn is the sampler's own connection, opened the way the application's
// pool opens its connections. It sets nothing on the session: each of the
// sample's transactions sets its timeouts locally (package queuedepth),
// and so does each election statement, so a pooler in transaction mode
// neither refuses them as startup parameters nor leaks them to the
// application's sessions. It is used by one goroutine at a time.
type conn struct {
	src  *pgxpool.Config
	conn *pgx.Conn
}

// live reports whether there is an open connection.
func (c *conn) live() bool { return c.conn != nil && !c.conn.IsClosed() }

// ensure connects unless connected.
func (c *conn) ensure(ctx context.Context) error {
	if c.live() {
		return nil
	}
	c.conn = nil
	cc := c.src.ConnConfig.Copy()
	if c.src.BeforeConnect != nil {
		if err := c.src.BeforeConnect(ctx, cc); err != nil {
			return fmt.Errorf("queuesampler: BeforeConnect: %w", err)
		}
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = AppName
	pc, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("queuesampler: connect: %w", err)
	}
	if c.src.AfterConnect != nil {
		if err := c.src.AfterConnect(ctx, pc); err != nil {
			_ = pc.Close(ctx)
			return fmt.Errorf("queuesampler: AfterConnect: %w", err)
		}
	}
	c.conn = pc
	return nil
}

// SimpleQuery implements election.SimpleQueryer on the open connection.
func (c *conn) SimpleQuery(ctx context.Context, sql string) ([]*pgconn.Result, error) {
	if !c.live() {
		return nil, errNotConnected
	}
	return c.conn.PgConn().Exec(ctx, sql).ReadAll()
}

// close closes the connection.
func (c *conn) close(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close(ctx)
	c.conn = nil
	return err
}
