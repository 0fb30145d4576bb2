package queuedepth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"weak"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Sampler samples the depths of the selected queues, again and again.
// A sample costs a bounded amount per queue, however many queues there are
// and however deep they are, in four stages (doc.go):
//
//  1. discover (discover.go): one catalog statement lists the queues, no
//     lock on any queue table;
//  2. catalog (catalog.go): one statement per catalogChunk queues reads the
//     statistics, the planner's inputs, each table's size and the id
//     sequence, in its own transaction;
//  3. probe (probe.go): one statement per queue whose table holds a page
//     reads the smallest and largest id and two counts through the vt
//     index, each capped at threshold+1 rows; where both states pass the
//     threshold or no estimate can be trusted, a stratified sample of ids;
//  4. estimate (estimate.go): the arithmetic that turns all of it into a
//     depth, never a made-up one.
//
// A Sampler is safe for concurrent use; samples run one at a time.
type Sampler struct {
	cfg config

	mu   sync.Mutex
	sess session
	last []*queue // the queues the last sample found
	// groupVis are the deep queues (by table) whose last group probe
	// needed the visible count: their branch makes it (see groupSQL).
	groupVis map[string]bool
}

// session is what the sampler knows of the connection it last ran on;
// a sample on another connection starts a new one.
type session struct {
	conn weak.Pointer[pgconn.PgConn]
	// direct: the server process is the connection's own (the discovery
	// reported the process id the connection was given at startup), so no
	// pooler stands in between.
	direct bool
	prep   prepared
	// spec are the probe statements of the last sample, when few, sent
	// ahead with the next discovery.
	spec []stmt
}

// maxSpeculated bounds the probe statements sent ahead.
const maxSpeculated = 64

// New validates opts and returns a sampler. No SQL is sent until Sample.
func New(opts Options) (*Sampler, error) {
	cfg, err := opts.check()
	if err != nil {
		return nil, err
	}
	return &Sampler{cfg: cfg}, nil
}

// Sample reports the depth of the selected queues, in name order (named
// queues that do not exist last), on conn: a connection of the sampler's
// own, one acquired from a pool, or the connection of a transaction in
// progress (the statements then run in that transaction, under its
// settings, and the first error ends the sample). It fails as a whole
// only when the queues cannot be listed or the session fails; a queue that
// cannot be sampled carries its own Err, and a queue dropped while it was
// sampled is left out.
//
// How the statements travel is decided per connection: with the simple
// query protocol when the connection's exec mode is
// pgx.QueryExecModeSimpleProtocol, else as unnamed statements of the
// extended protocol, pipelined; many transactions per round trip once the
// connection is proven direct, one per round trip until then (a pooler in
// transaction mode may move each transaction to another server
// connection). Statements are kept prepared only with
// Options.KeepPrepared, on a proven direct connection. An error that shows
// the session lost what the sampler kept on it (a prepared statement gone,
// a transaction aborted under it) makes the sampler forget the session and
// sample again at once.
func (s *Sampler) Sample(ctx context.Context, conn *pgx.Conn) ([]Queue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs, err := s.sample(ctx, conn)
	if err != nil && sessionLost(err) && !conn.IsClosed() && conn.PgConn().TxStatus() == 'I' {
		s.sess = session{}
		qs, err = s.sample(ctx, conn)
	}
	if err != nil {
		return nil, fmt.Errorf("queuedepth: sample: %w", pgmqclient.NotInstalled(conn, err))
	}
	return qs, nil
}

// SamplePool samples on a connection acquired from pool for the sample.
func (s *Sampler) SamplePool(ctx context.Context, pool *pgxpool.Pool) ([]Queue, error) {
	var qs []Queue
	err := pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		var err error
		qs, err = s.Sample(ctx, c.Conn())
		return err
	})
	return qs, err
}

// sessionLost reports whether err shows that the session lost what the
// sampler relied on: a prepared statement missing or already there
// (another server connection behind a pooler, or DISCARD ALL), a cached
// plan invalidated by a change of a table's columns, or a transaction
// left aborted.
func sessionLost(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "26000", "42P05", "25P02", "08P01":
		return true
	case "0A000":
		return pgErr.Message == "cached plan must not change result type"
	}
	return false
}

func (s *Sampler) sample(ctx context.Context, conn *pgx.Conn) ([]Queue, error) {
	pc := conn.PgConn()
	if s.sess.conn.Value() != pc {
		s.sess = session{conn: weak.Make(pc)}
	}
	e := &executor{
		conn:   pc,
		direct: s.sess.direct,
		simple: conn.Config().DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol,
		inTx:   pc.TxStatus() != 'I',
	}
	s.sess.prep.on = s.cfg.keepPrepared && e.direct && !e.simple && !e.inTx
	if err := s.sess.prep.ensureFixed(ctx, pc); err != nil {
		return nil, err
	}
	// Each transaction of the sample starts by setting its own timeouts,
	// local to it: nothing is set on the session. Inside a caller's
	// transaction the caller's settings rule.
	st := s.sess.prep.stmt(localTimeoutsSQL, 0, durationSetting(s.cfg.lockTimeout), durationSetting(s.cfg.statementTimeout))
	e.prefix = &st

	// The catalog of the queues found last time goes in the same round
	// trip as the discovery; it is used when the queues did not change.
	// On a connection sampled before, the probes of the last sample go in
	// that round trip too, when they are few: used if this sample makes
	// the same. With few queues all of it is one transaction: one round
	// trip, one wake-up of each side, its locks bounded (one catalog chunk
	// and at most maxSpeculated probes).
	prev := s.last
	pre := s.catalogStmts(prev)
	spec := s.sess.spec
	s.sess.spec = nil
	joined := spec != nil && len(pre) == 1
	ahead := slices.Clone(append(pre, spec...))
	if joined {
		for i := range ahead[:len(ahead)-1] {
			ahead[i].joinNext = true
		}
	}
	t0 := time.Now()
	d, err := s.discover(ctx, e, ahead, joined)
	if err != nil {
		return nil, err
	}
	if d.pid != 0 && !e.direct {
		// Proven direct from now on; a pooler's connection never is.
		s.sess.direct = d.pid == pc.PID()
		e.direct = s.sess.direct
	}
	preRes, preErrs := d.extra[:len(pre)], d.extraErrs[:len(pre)]
	sp := speculated{stmts: spec, results: d.extra[len(pre):], errs: d.extraErrs[len(pre):]}
	s.last = d.queues
	t1 := time.Now()
	if !sameQueues(prev, d.queues) {
		preRes, preErrs, sp = nil, nil, speculated{}
	}
	if err := s.readCatalog(ctx, e, d.queues, d.standby, preRes, preErrs); err != nil {
		return nil, err
	}
	t2 := time.Now()
	if err := s.probe(ctx, e, d.queues, sp); err != nil {
		return nil, err
	}
	if err := s.forgetDropped(ctx, e, d.queues); err != nil {
		return nil, err
	}
	if phases != nil {
		phases(t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	}
	return s.results(d.queues, d.now), nil
}

// phases, when set (by benchmarks), receives how long each stage of a
// successful sample took.
var phases func(discover, catalog, probe time.Duration)

// durationSetting is d as a PostgreSQL setting in milliseconds; "0" (no
// limit) for zero.
func durationSetting(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// speculated are probe statements sent ahead and their results.
type speculated struct {
	stmts   []stmt
	results []result
	errs    []error
}

// matches reports whether stmts are the statements sent ahead.
func (sp speculated) matches(stmts []stmt) bool {
	return sp.stmts != nil && slices.EqualFunc(sp.stmts, stmts, func(a, b stmt) bool {
		return a.sql == b.sql && a.name == b.name && slices.Equal(a.args, b.args)
	})
}
