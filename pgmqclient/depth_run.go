package pgmqclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// depthStmt is one statement of the depth sampler with its arguments in
// text form; the SQL casts each parameter to its type.
type depthStmt struct {
	sql  string
	args []string
	// name, when set, runs the statement prepared under that name (see
	// depthPrepared) instead of sending its text.
	name string
	// joinNext runs the next statement in the same transaction (no Sync
	// in between): after an error the server skips the rest of the
	// transaction, and those statements fail with errSkipped.
	joinNext bool
}

// errSkipped is the error of a statement the server skipped because an
// earlier statement of its transaction failed.
var errSkipped = errors.New("pgmqclient: skipped after an earlier error in its transaction")

// depthRows is one statement's result: rows of text values, nil for NULL.
type depthRows [][][]byte

// depthRunner runs statements each in its own transaction, so that one
// failing (a locked table, a dropped one) fails only itself, and locks are
// released after every statement. run returns one result and one error
// per statement; its own error means the session itself failed.
type depthRunner interface {
	run(ctx context.Context, stmts []depthStmt) ([]depthRows, []error, error)
}

// pipelineChunk bounds how many statements are written before their
// results are read.
const pipelineChunk = 256

// pipelineRunner pipelines the statements as unnamed statements, each
// followed by a Sync: one round trip per chunk, no prepared statement left
// on the server.
//
// prefix, when set, starts every transaction (its result is dropped): the
// sampler's local timeouts.
type pipelineRunner struct {
	conn   *pgconn.PgConn
	prefix *depthStmt
}

func (r pipelineRunner) run(ctx context.Context, stmts []depthStmt) ([]depthRows, []error, error) {
	rows := make([]depthRows, len(stmts))
	errs := make([]error, len(stmts))
	for start := 0; start < len(stmts); start += pipelineChunk {
		end := min(start+pipelineChunk, len(stmts))
		if err := r.runChunk(ctx, stmts[start:end], rows[start:end], errs[start:end]); err != nil {
			return nil, nil, err
		}
		if err := abortedBy(errs[:end]); err != nil {
			return nil, nil, err
		}
	}
	return rows, errs, nil
}

// abortedBy returns the error that aborted the caller's transaction, when
// statements failed because it was (in_failed_sql_transaction): inside a
// transaction of the caller's, the first failure ends the whole sample.
func abortedBy(errs []error) error {
	var first error
	for _, err := range errs {
		var pgErr *pgconn.PgError
		if err == nil || errors.Is(err, errSkipped) {
			continue
		}
		if first == nil {
			first = err
		}
		if errors.As(err, &pgErr) && pgErr.Code == "25P02" {
			return first
		}
	}
	return nil
}

func (r pipelineRunner) runChunk(ctx context.Context, stmts []depthStmt, rows []depthRows, errs []error) error {
	p := r.conn.StartPipeline(ctx)
	send := func(s depthStmt) {
		params := make([][]byte, len(s.args))
		for j, a := range s.args {
			params[j] = []byte(a)
		}
		if s.name != "" {
			p.SendQueryPrepared(s.name, params, nil, nil)
		} else {
			p.SendQueryParams(s.sql, params, nil, nil, nil)
		}
	}
	start := true // a transaction starts
	for i, s := range stmts {
		if start && r.prefix != nil {
			send(*r.prefix)
		}
		send(s)
		start = !s.joinNext || i == len(stmts)-1
		if start {
			p.SendPipelineSync()
		}
	}
	if err := p.Flush(); err != nil {
		_ = p.Close()
		return err
	}
	var failed error // the transaction in progress failed
	start = true
	for i := range stmts {
		last := !stmts[i].joinNext || i == len(stmts)-1
		if start && r.prefix != nil {
			if err := readDropped(p); err != nil {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					_ = p.Close()
					return err
				}
				failed = err
			}
		}
		start = last
		if failed != nil {
			rows[i], errs[i] = nil, fmt.Errorf("%w: %w", errSkipped, failed)
			if last {
				if err := readSync(p); err != nil {
					return err
				}
				failed = nil
			}
			continue
		}
		res, err := p.GetResults()
		if err == nil {
			rr, ok := res.(*pgconn.ResultReader)
			if !ok {
				_ = p.Close()
				return fmt.Errorf("pgmqclient: pipeline: unexpected result %T", res)
			}
			for rr.NextRow() {
				vals := rr.Values()
				row := make([][]byte, len(vals))
				for j, v := range vals {
					if v != nil {
						row[j] = append([]byte{}, v...)
					}
				}
				rows[i] = append(rows[i], row)
			}
			_, err = rr.Close()
		}
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				_ = p.Close()
				return err
			}
			rows[i], errs[i] = nil, err
			failed = err
		}
		if last {
			if err := readSync(p); err != nil {
				return err
			}
			failed = nil
		}
	}
	return p.Close()
}

// readDropped reads a statement's result and drops its rows.
func readDropped(p *pgconn.Pipeline) error {
	res, err := p.GetResults()
	if err != nil {
		return err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fmt.Errorf("pgmqclient: pipeline: unexpected result %T", res)
	}
	_, err = rr.Close()
	return err
}

// readSync reads the result of a Sync; on failure it closes the pipeline.
func readSync(p *pgconn.Pipeline) error {
	res, err := p.GetResults()
	if err != nil {
		_ = p.Close()
		return err
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		_ = p.Close()
		return fmt.Errorf("pgmqclient: pipeline: expected a sync, got %T", res)
	}
	return nil
}

// sequentialRunner is the fallback for a DB that is none of pgx's: one
// statement at a time, never prepared.
type sequentialRunner struct{ db DB }

func (r sequentialRunner) run(ctx context.Context, stmts []depthStmt) ([]depthRows, []error, error) {
	rows := make([]depthRows, len(stmts))
	errs := make([]error, len(stmts))
	for i, s := range stmts {
		args := make([]any, 0, len(s.args)+1)
		args = append(args, pgx.QueryExecModeExec)
		for _, a := range s.args {
			args = append(args, a)
		}
		out, err := r.queryText(ctx, s.sql, args)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			rows[i] = out
		case errors.As(err, &pgErr):
			errs[i] = err
			if err := abortedBy(errs[:i+1]); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, err
		}
	}
	return rows, errs, nil
}

func (r sequentialRunner) queryText(ctx context.Context, sql string, args []any) (depthRows, error) {
	rs, err := r.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out depthRows
	for rs.Next() {
		vals := rs.RawValues()
		row := make([][]byte, len(vals))
		for j, v := range vals {
			if v != nil {
				row[j] = append([]byte{}, v...)
			}
		}
		out = append(out, row)
	}
	return out, rs.Err()
}

// depthRunnerFor picks the runner for db: pipelined on a *pgx.Conn, a
// pgx.Tx's connection or a connection acquired from a *pgxpool.Pool for
// the sample; sequential otherwise. release gives back what was acquired.
func depthRunnerFor(ctx context.Context, db DB) (r depthRunner, release func(), err error) {
	switch d := db.(type) {
	case *pgx.Conn:
		return pipelineRunner{conn: d.PgConn()}, func() {}, nil
	case pgx.Tx:
		return pipelineRunner{conn: d.Conn().PgConn()}, func() {}, nil
	case *pgxpool.Pool:
		c, err := d.Acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		return pipelineRunner{conn: c.Conn().PgConn()}, c.Release, nil
	}
	return sequentialRunner{db}, func() {}, nil
}

// prepare prepares each statement under its name, each in its own
// transaction, and reports which failed.
func (r pipelineRunner) prepare(ctx context.Context, stmts []depthStmt) ([]error, error) {
	return r.each(ctx, len(stmts), func(p *pgconn.Pipeline, i int) { p.SendPrepare(stmts[i].name, stmts[i].sql, nil) })
}

// deallocate releases prepared statements.
func (r pipelineRunner) deallocate(ctx context.Context, names []string) ([]error, error) {
	return r.each(ctx, len(names), func(p *pgconn.Pipeline, i int) { p.SendDeallocate(names[i]) })
}

// each pipelines n requests made by send, each followed by a Sync, whose
// results carry no rows.
func (r pipelineRunner) each(ctx context.Context, n int, send func(*pgconn.Pipeline, int)) ([]error, error) {
	errs := make([]error, n)
	if n == 0 {
		return errs, nil
	}
	p := r.conn.StartPipeline(ctx)
	for i := range n {
		send(p, i)
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		_ = p.Close()
		return nil, err
	}
	for i := range n {
		if _, err := p.GetResults(); err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				_ = p.Close()
				return nil, err
			}
			errs[i] = err
		}
		res, err := p.GetResults()
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		if _, ok := res.(*pgconn.PipelineSync); !ok {
			_ = p.Close()
			return nil, fmt.Errorf("pgmqclient: pipeline: expected a sync, got %T", res)
		}
	}
	return errs, p.Close()
}
