package queuedepth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// stmt is one statement of the sampler with its arguments in text form;
// the SQL casts each parameter to its type.
type stmt struct {
	sql  string
	args []string
	// name, when set, runs the statement prepared under that name (see
	// prepared) instead of sending its text.
	name string
	// queues is how many queue tables the statement reads: it bounds how
	// many statements share a transaction (their locks last until its end).
	queues int
	// joinNext runs the next statement in the same transaction (the
	// sampler's one-transaction form for few queues).
	joinNext bool
}

// errSkipped is the error of a statement the server skipped because an
// earlier statement of its transaction failed. The executor runs such
// statements again in a transaction of their own, so the stages never see
// it, except inside a caller's transaction.
var errSkipped = errors.New("queuedepth: skipped after an earlier error in its transaction")

// Bounds of the executor.
const (
	// flushStatements bounds how many statements are written before their
	// results are read.
	flushStatements = 256
	// txQueues bounds the queue tables the statements of one transaction
	// read, when the executor packs statements together: their locks add
	// up until the transaction ends.
	txQueues = 64
)

// executor runs the sampler's statements on one connection. Each
// statement fails alone: a locked or dropped table costs its own
// statement, never the others. Consecutive statements share a short
// transaction up to txQueues queue tables (their locks last until it
// ends, so the bound holds whatever the number of queues; a transaction
// costs about as much as the statement reading a small table), and those
// after a failed one run again in a transaction of their own. It has one
// behaviour and three wire forms, chosen per connection (see
// Sampler.Sample):
//
//   - direct (the server process is the connection's own): transactions
//     are pipelined, up to flushStatements statements per round trip;
//   - behind a pooler in transaction mode (not proven direct): one
//     transaction per round trip, since a pooler may hand the next
//     pipelined transaction to another server connection;
//   - the simple query protocol, when the connection's exec mode asks for
//     it: one transaction per round trip, sent as one query string with
//     the parameters written as literals.
//
// Every transaction starts with prefix (the sampler's local timeouts),
// except inside a caller's transaction (inTx), where the caller's
// settings rule and the first error ends the sample.
type executor struct {
	conn   *pgconn.PgConn
	direct bool
	simple bool
	inTx   bool
	prefix *stmt
	// trips are the durations of this sample's round trips so far: a
	// round trip is started only while the sample's deadline leaves their
	// median (see timeLeft).
	trips []time.Duration
}

// run runs stmts and returns one result and one error per statement; its
// own error means the session itself failed (or, inside a caller's
// transaction, that the transaction was aborted).
func (e *executor) run(ctx context.Context, stmts []stmt) ([]result, []error, error) {
	results := make([]result, len(stmts))
	errs := make([]error, len(stmts))
	pending := make([]int, len(stmts))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		txs := e.pack(stmts, pending)
		for len(txs) > 0 {
			n := e.perRoundTrip(stmts, txs)
			if err := e.timeLeft(ctx); err != nil {
				return nil, nil, err
			}
			began := time.Now()
			var err error
			if e.simple {
				err = e.query(ctx, stmts, txs[0], results, errs)
			} else {
				err = e.pipeline(ctx, stmts, txs[:n], results, errs)
			}
			if err != nil {
				return nil, nil, err
			}
			e.trips = append(e.trips, time.Since(began))
			txs = txs[n:]
		}
		before := len(pending)
		pending = pending[:0]
		var skippedBy error
		for i, err := range errs {
			if errors.Is(err, errSkipped) {
				pending = append(pending, i)
				errs[i], skippedBy = nil, err
			} else if err != nil && e.inTx {
				return nil, nil, err
			}
		}
		if len(pending) == before {
			// Nothing ran: the transactions failed before their first
			// statement (their prefix). Trying again would do the same.
			return nil, nil, skippedBy
		}
	}
	return results, errs, nil
}

// pack groups the pending statements into transactions: the sampler's
// joined statements together, and consecutive statements up to txQueues
// queue tables (inside a caller's transaction, where every statement is
// in it anyway, one per Sync).
// timeLeft fails, matching context.DeadlineExceeded, when ctx's deadline
// leaves less than a round trip of this sample takes (the median of those
// so far: one that waited out a lock, or the long recheck of a locked
// table, is no guide to the next). The sample then stops between round
// trips, with nothing in flight: a round trip cut by the deadline would
// make pgx close the connection, and the next sample would start on a new
// session, cold (the server's caches of every queue table to fill again),
// as slow as this one. Stopping here keeps the session and what it warmed
// for the next sample.
func (e *executor) timeLeft(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok || len(e.trips) == 0 {
		return nil
	}
	sorted := slices.Clone(e.trips)
	slices.Sort(sorted)
	trip := sorted[(len(sorted)-1)/2]
	if left := time.Until(deadline); left < trip {
		return fmt.Errorf("stopped between round trips with %v of the sample's time left, less than a round trip (%v), keeping the session: %w",
			left.Round(time.Millisecond), trip.Round(time.Millisecond), context.DeadlineExceeded)
	}
	return nil
}

func (e *executor) pack(stmts []stmt, pending []int) [][]int {
	var txs [][]int
	var cur []int
	queues := 0
	for k, i := range pending {
		cur = append(cur, i)
		queues += stmts[i].queues
		next := -1
		if k+1 < len(pending) {
			next = pending[k+1]
		}
		join := next >= 0 && (stmts[i].joinNext ||
			!e.inTx && queues+stmts[next].queues <= txQueues)
		if !join {
			txs = append(txs, cur)
			cur, queues = nil, 0
		}
	}
	return txs
}

// perRoundTrip is how many of txs go in the next round trip: one behind a
// pooler (or in the simple protocol), else as many as fit in
// flushStatements statements.
func (e *executor) perRoundTrip(stmts []stmt, txs [][]int) int {
	if (!e.direct && !e.inTx) || e.simple {
		return 1
	}
	n, total := 0, 0
	for _, tx := range txs {
		if n > 0 && total+len(tx) > flushStatements {
			break
		}
		n++
		total += len(tx)
	}
	return n
}

// prefixed reports whether transactions start with the prefix.
func (e *executor) prefixed() bool { return e.prefix != nil && !e.inTx }

// pipeline sends txs in one round trip, each transaction followed by a
// Sync.
func (e *executor) pipeline(ctx context.Context, stmts []stmt, txs [][]int, results []result, errs []error) error {
	p := e.conn.StartPipeline(ctx)
	for _, tx := range txs {
		if e.prefixed() {
			send(p, *e.prefix)
		}
		for _, i := range tx {
			send(p, stmts[i])
		}
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		_ = p.Close()
		return err
	}
	for _, tx := range txs {
		var failed error // the transaction failed: the server skips the rest
		if e.prefixed() {
			if _, err := pipelineResult(p); err != nil {
				if !serverError(err) {
					_ = p.Close()
					return err
				}
				failed = err
			}
		}
		for _, i := range tx {
			if failed != nil {
				errs[i] = fmt.Errorf("%w: %w", errSkipped, failed)
				continue
			}
			res, err := pipelineResult(p)
			if err != nil {
				if !serverError(err) {
					_ = p.Close()
					return err
				}
				errs[i], failed = err, err
				continue
			}
			results[i] = res
		}
		if err := readSync(p); err != nil {
			return err
		}
	}
	return p.Close()
}

// send queues s on the pipeline.
func send(p *pgconn.Pipeline, s stmt) {
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

// pipelineResult reads the next statement's result.
func pipelineResult(p *pgconn.Pipeline) (result, error) {
	res, err := p.GetResults()
	if err != nil {
		return result{}, err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return result{}, fmt.Errorf("queuedepth: pipeline: unexpected result %T", res)
	}
	return readRows(rr)
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
		return fmt.Errorf("queuedepth: pipeline: expected a sync, got %T", res)
	}
	return nil
}

// query runs one transaction as one simple query: the statements joined
// by semicolons run in one implicit transaction, and after an error the
// server runs none of the rest.
func (e *executor) query(ctx context.Context, stmts []stmt, tx []int, results []result, errs []error) error {
	var b strings.Builder
	if e.prefixed() {
		b.WriteString(inline(*e.prefix))
		b.WriteString(";\n")
	}
	for _, i := range tx {
		b.WriteString(inline(stmts[i]))
		b.WriteString(";\n")
	}
	mrr := e.conn.Exec(ctx, b.String())
	k := 0 // statements answered, the prefix included
	if !e.prefixed() {
		k = 1
	}
	var failed error
	for mrr.NextResult() {
		res, err := readRows(mrr.ResultReader())
		if k > 0 && k <= len(tx) {
			results[tx[k-1]], errs[tx[k-1]] = res, err
		}
		k++
		if err != nil {
			failed = err
			break
		}
	}
	if err := mrr.Close(); err != nil {
		if !serverError(err) {
			return err
		}
		if failed == nil {
			// Failed before its first row description: the statement
			// being answered next.
			failed = err
			if k > 0 && k <= len(tx) {
				errs[tx[k-1]] = err
			}
			k++
		}
	}
	if failed == nil && k <= len(tx) {
		return fmt.Errorf("queuedepth: simple query: %d results for %d statements", k-1, len(tx))
	}
	for j := max(k-1, 0); j < len(tx); j++ {
		errs[tx[j]] = fmt.Errorf("%w: %w", errSkipped, failed)
	}
	return nil
}

// inline is s's text with its parameters written as escaped string
// literals (E'...', valid whatever standard_conforming_strings says),
// for the simple protocol. The sampler's SQL holds '$' only in parameter
// references (sql_test.go checks it), and casts every parameter.
func inline(s stmt) string {
	if len(s.args) == 0 {
		return s.sql
	}
	var b strings.Builder
	sql := s.sql
	for i := 0; i < len(sql); i++ {
		j := i + 1
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		if sql[i] != '$' || j == i+1 {
			b.WriteByte(sql[i])
			continue
		}
		n, _ := strconv.Atoi(sql[i+1 : j])
		b.WriteString(`E'`)
		b.WriteString(literalEscaper.Replace(s.args[n-1]))
		b.WriteString(`'`)
		i = j - 1
	}
	return b.String()
}

var literalEscaper = strings.NewReplacer(`\`, `\\`, `'`, `''`)

// serverError reports whether err is the server refusing a statement (the
// session goes on), not the session failing.
func serverError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}
