package queuedepth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// forgetDropped leaves out the queues whose statements failed because
// their table went away while the sample ran: a queue dropped (and perhaps
// created again) between the discovery and the statement that read it
// fails with undefined_table, with "could not open relation with OID" from
// a sequence read, or waits on the dropping transaction's lock until the
// lock timeout. Dropping a queue is not a sampling failure: one lock-free
// catalog lookup of the failed queues' tables tells which are gone. A
// queue that failed on a lock and whose table is still there is given a
// second, longer wait for that lock (a few of them per sample), then
// looked up again: a drop in progress commits meanwhile, while a table
// held by anything else keeps its error.
func (s *Sampler) forgetDropped(ctx context.Context, e *executor, queues []*queue) error {
	if e.inTx {
		return nil
	}
	var failed []*queue
	for _, q := range queues {
		var pgErr *pgconn.PgError
		if q.err != nil && errors.As(q.err, &pgErr) {
			failed = append(failed, q)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	gone, err := s.gone(ctx, e, failed)
	if err != nil {
		return err
	}
	var locked []*queue
	for _, q := range failed {
		switch {
		case gone[q.oid]:
			q.found, q.err = false, nil
		case lockTimeout(q.err) && len(locked) < maxLockRechecks:
			locked = append(locked, q)
		}
	}
	if len(locked) == 0 {
		return nil
	}
	// Per queue, in one transaction: a longer lock_timeout, a read that
	// waits for the table's lock (a dropped table is then looked up by
	// name again: gone, or the queue created anew), and the lookup of the
	// old table.
	wait := durationSetting(lockRecheckFactor * s.cfg.lockTimeout)
	var stmts []stmt
	for _, q := range locked {
		stmts = append(stmts,
			stmt{sql: `SELECT pg_catalog.set_config('lock_timeout', $1::text, true)`, args: []string{wait}, joinNext: true},
			stmt{sql: `SELECT FROM ` + queueTable(q.rel) + ` LIMIT 0`, queues: 1, joinNext: true},
			stmt{sql: existingSQL, args: []string{"{" + q.oid + "}"}})
	}
	res, errs, err := e.run(ctx, stmts)
	if err != nil {
		return err
	}
	for i, q := range locked {
		if errs[3*i+2] == nil && len(res[3*i+2].rows) == 0 {
			q.found, q.err = false, nil
		}
	}
	return nil
}

// Bounds of forgetDropped's second wait: at most maxLockRechecks queues
// per sample, each waiting lockRecheckFactor times the lock timeout.
const (
	maxLockRechecks   = 8
	lockRecheckFactor = 5
)

// gone returns which of the queues' tables no longer exist.
func (s *Sampler) gone(ctx context.Context, e *executor, qs []*queue) (map[string]bool, error) {
	oids := make([]string, len(qs))
	for i, q := range qs {
		oids[i] = q.oid
	}
	res, errs, err := e.run(ctx, []stmt{{sql: existingSQL, args: []string{"{" + strings.Join(oids, ",") + "}"}}})
	if err != nil || errs[0] != nil {
		return nil, err // a failed lookup leaves the failures as they are
	}
	gone := make(map[string]bool, len(qs))
	for _, o := range oids {
		gone[o] = true
	}
	_ = res[0].each(func(r row) error {
		delete(gone, r.text(colExisting))
		return nil
	})
	return gone, nil
}

// lockTimeout reports whether err is lock_not_available.
func lockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// results assembles the Queues, in discovery order, then the named queues
// that were not found.
func (s *Sampler) results(queues []*queue, now time.Time) []Queue {
	out := make([]Queue, 0, len(queues))
	seen := make(map[string]bool, len(queues))
	for _, q := range queues {
		seen[strings.ToLower(q.name)] = true
		if !q.found {
			continue // dropped while sampled
		}
		d := Queue{Name: q.name, SampledAt: now, TotalSent: q.sent, TotalSentKnown: q.sentKnown}
		if q.err != nil {
			d.Err = &QueueError{Queue: q.name, Err: q.err}
			out = append(out, d)
			continue
		}
		if q.in.hasRows && q.age > 0 {
			d.OldestAge = time.Duration(q.age * float64(time.Second))
		}
		e := estimateDepth(q.in)
		switch {
		case e.unknown != "":
			d.Err = &QueueError{Queue: q.name, Err: &UnknownError{Reason: e.unknown}}
		case e.needSample:
			d.Err = &QueueError{Queue: q.name, Err: &UnknownError{Reason: ReasonNoEstimate}}
		default:
			d.Depth, d.Visible, d.Invisible = e.depth, e.visible, e.invisible
			d.VisibleMethod, d.InvisibleMethod, d.Source = e.visibleMethod, e.invisibleMethod, e.source
			d.Method = MethodCount
			if d.VisibleMethod != MethodCount || d.InvisibleMethod != MethodCount {
				d.Method = MethodEstimate
			}
		}
		out = append(out, d)
	}
	for _, n := range s.cfg.names {
		if !seen[n] {
			out = append(out, Queue{Name: n, SampledAt: now,
				Err: &QueueError{Queue: n, Err: pgmqclient.ErrQueueNotFound}})
			seen[n] = true
		}
	}
	return out
}
