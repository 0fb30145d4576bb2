package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// samplerAppName is the sampler's application_name, a startup parameter
// every pooler accepts.
const samplerAppName = "pgmqotel-queue-sampler"

// errNotConnected is returned by a sampler connection used before it has
// connected.
var errNotConnected = errors.New("otelmetrics: queue sampler: not connected")

// samplerConn is the queue sampler's own connection, opened the way the
// application's pool opens its connections: the same connection config,
// BeforeConnect (which may supply a fresh password or token) and
// AfterConnect, and the same query exec mode. It sets nothing on the
// session: the sample's timeouts are SET LOCAL in the sample's own
// read-only transaction, and the election's in each election statement's,
// so a pooler in transaction mode neither refuses them as startup
// parameters nor leaks them to the application's sessions.
//
// It is used by one goroutine at a time (the sampler's semaphore).
type samplerConn struct {
	src     *pgxpool.Config
	timeout time.Duration // server-side statement and lock timeout
	opts    pgmqclient.DepthOptions

	conn   *pgx.Conn
	db     pgmqclient.DB            // conn, or conn without statement cache behind a pooler
	depths *pgmqclient.DepthSampler // on db
	pooled bool                     // a pooler answers for the server (see connect)
}

// uncachedDB runs every query of the depth sampler in one exec mode,
// whatever the connection's default: behind a pooler in transaction mode a
// statement prepared in one transaction may be missing from the next one's
// server connection. It does not pipeline (pgx sets a batch's mode per
// connection), so a sample there takes one more round trip.
type uncachedDB struct {
	conn *pgx.Conn
	mode pgx.QueryExecMode
}

func (d uncachedDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return d.conn.Exec(ctx, sql, append([]any{d.mode}, args...)...)
}

func (d uncachedDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return d.conn.Query(ctx, sql, append([]any{d.mode}, args...)...)
}

func (d uncachedDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return d.conn.QueryRow(ctx, sql, append([]any{d.mode}, args...)...)
}

func newSamplerConn(src *pgxpool.Config, sampleTimeout time.Duration, opts pgmqclient.DepthOptions) *samplerConn {
	// Let the server give up a little before our own deadline, so a locked
	// or slow table ends the statement but keeps the session.
	timeout := max(sampleTimeout*9/10, time.Millisecond)
	opts.StatementTimeout = timeout
	return &samplerConn{src: src, timeout: timeout, opts: opts}
}

// live reports whether there is an open connection.
func (c *samplerConn) live() bool { return c.conn != nil && !c.conn.IsClosed() }

// ensure connects unless connected.
func (c *samplerConn) ensure(ctx context.Context) error {
	if c.live() {
		return nil
	}
	c.conn, c.db, c.depths = nil, nil, nil
	conn, pooled, err := c.connect(ctx)
	if err != nil {
		return err
	}
	var db pgmqclient.DB = conn
	// Behind a pooler a prepared statement may be missing from the next
	// transaction's server connection: cache none there.
	if mode := conn.Config().DefaultQueryExecMode; pooled && (mode == pgx.QueryExecModeCacheStatement || mode == pgx.QueryExecModeCacheDescribe) {
		db = uncachedDB{conn: conn, mode: pgx.QueryExecModeExec}
	}
	ds, err := pgmqclient.NewDepthSampler(db, c.opts)
	if err != nil { // options were validated in newQueueSampler
		_ = conn.Close(ctx)
		return fmt.Errorf("otelmetrics: queue sampler: %w", err)
	}
	c.conn, c.db, c.depths, c.pooled = conn, db, ds, pooled
	return nil
}

// connect opens a connection as pgxpool would, and tells whether a pooler
// answers for the server: the process id in the server's key data is not
// the backend's own (PgBouncer makes one up).
func (c *samplerConn) connect(ctx context.Context) (*pgx.Conn, bool, error) {
	cc := c.src.ConnConfig.Copy()
	if c.src.BeforeConnect != nil {
		if err := c.src.BeforeConnect(ctx, cc); err != nil {
			return nil, false, fmt.Errorf("otelmetrics: queue sampler: BeforeConnect: %w", err)
		}
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = samplerAppName
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, false, fmt.Errorf("otelmetrics: queue sampler: connect: %w", err)
	}
	if c.src.AfterConnect != nil {
		if err := c.src.AfterConnect(ctx, conn); err != nil {
			_ = conn.Close(ctx)
			return nil, false, fmt.Errorf("otelmetrics: queue sampler: AfterConnect: %w", err)
		}
	}
	res, err := conn.PgConn().Exec(ctx, "SELECT pg_backend_pid()").ReadAll()
	if err != nil {
		_ = conn.Close(ctx)
		return nil, false, fmt.Errorf("otelmetrics: queue sampler: connect: %w", err)
	}
	pooled := true
	if len(res) == 1 && len(res[0].Rows) == 1 {
		pid, _ := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32)
		pooled = uint32(pid) != conn.PgConn().PID()
	}
	return conn, pooled, nil
}

// SimpleQuery implements election.SimpleQueryer on the open connection.
func (c *samplerConn) SimpleQuery(ctx context.Context, sql string) ([]*pgconn.Result, error) {
	if !c.live() {
		return nil, errNotConnected
	}
	return c.conn.PgConn().Exec(ctx, sql).ReadAll()
}

// sample samples the queues in one read-only transaction bounded by the
// server-side timeouts. A queue dropped since the last sample fails the
// transaction at its table (42P01): the sample is made again at once, in a
// new transaction, with a sampler that discovers the queues first.
func (c *samplerConn) sample(ctx context.Context) ([]pgmqclient.QueueDepth, error) {
	depths, err := c.sampleTx(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "25P02") && c.live() {
		if c.depths, err = pgmqclient.NewDepthSampler(c.db, c.opts); err != nil {
			return nil, err
		}
		depths, err = c.sampleTx(ctx)
	}
	return depths, err
}

func (c *samplerConn) sampleTx(ctx context.Context) ([]pgmqclient.QueueDepth, error) {
	if !c.live() {
		return nil, errNotConnected
	}
	if !c.pooled {
		// Straight to the server: the depth sampler runs its statements
		// in transactions of its own, each with its timeouts set local to
		// it (statement_timeout as below, lock_timeout
		// pgmqclient.DefaultDepthLockTimeout), so that a locked queue
		// table costs that queue only and the session keeps no setting.
		return c.depths.Sample(ctx)
	}
	ms := strconv.FormatInt(max(c.timeout.Milliseconds(), 1), 10)
	begin := "BEGIN READ ONLY;\nSET LOCAL statement_timeout = " + ms + ";\nSET LOCAL lock_timeout = " + ms +
		// The sampling statement keeps one plan across samples.
		";\nSET LOCAL plan_cache_mode = force_generic_plan"
	if _, err := c.conn.PgConn().Exec(ctx, begin).ReadAll(); err != nil {
		c.rollback()
		return nil, err
	}
	depths, err := c.depths.Sample(ctx)
	if err != nil {
		c.rollback()
		return nil, err
	}
	if _, err := c.conn.PgConn().Exec(ctx, "COMMIT").ReadAll(); err != nil {
		c.rollback()
		return nil, err
	}
	return depths, nil
}

// rollback ends a failed transaction so the connection can be reused; a
// connection that cannot is closed.
func (c *samplerConn) rollback() {
	if !c.live() || c.conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.conn.PgConn().Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		_ = c.conn.Close(ctx)
	}
}

// close closes the connection.
func (c *samplerConn) close(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close(ctx)
	c.conn, c.db, c.depths = nil, nil, nil
	return err
}
