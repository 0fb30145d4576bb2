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
// catalog lookup of the failed queues' tables tells which are gone.
func (s *Sampler) forgetDropped(ctx context.Context, e *executor, queues []*queue) error {
	var failed []*queue
	var oids []string
	for _, q := range queues {
		var pgErr *pgconn.PgError
		if q.err != nil && errors.As(q.err, &pgErr) {
			failed = append(failed, q)
			oids = append(oids, q.oid)
		}
	}
	if len(failed) == 0 || e.inTx {
		return nil
	}
	res, errs, err := e.run(ctx, []stmt{{sql: existingSQL, args: []string{"{" + strings.Join(oids, ",") + "}"}}})
	if err != nil {
		return err
	}
	if errs[0] != nil {
		return nil // the failures stand as they are
	}
	existing := map[string]bool{}
	_ = res[0].each(func(r row) error {
		existing[r.text(colExisting)] = true
		return nil
	})
	for _, q := range failed {
		if !existing[q.oid] {
			q.found, q.err = false, nil
		}
	}
	return nil
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
