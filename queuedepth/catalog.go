package queuedepth

import (
	"context"
	"fmt"
	"strings"
)

// catalogChunk is how many queues one catalog statement reads: it takes a
// lock per table, partition and sequence, held until its transaction ends,
// so the chunk bounds the locks the sampler holds at once.
var catalogChunk = 200

// readCatalog fills each queue's catalog inputs, a chunk of queues per
// statement. A chunk that fails (a table locked past the lock timeout, a
// sequence dropped under the statement) is read again one queue per
// statement, so the failure stays with its queue.
//
// preRes and preErrs, when not nil, are the results of catalogStmts(queues)
// already run.
func (s *Sampler) readCatalog(ctx context.Context, e *executor, queues []*queue, standby bool,
	preRes []result, preErrs []error) error {
	chunks := catalogChunks(queues)
	res, errs := preRes, preErrs
	if res == nil {
		var err error
		if res, errs, err = e.run(ctx, s.catalogStmts(queues)); err != nil {
			return err
		}
	}
	var retry []*queue
	for i, c := range chunks {
		if errs[i] != nil {
			retry = append(retry, c...)
			continue
		}
		if err := s.applyCatalog(c, res[i], standby); err != nil {
			return err
		}
	}
	if len(retry) == 0 {
		return nil
	}
	stmts := make([]stmt, len(retry))
	for i, q := range retry {
		stmts[i] = s.catalogStmt([]*queue{q})
	}
	res, errs, err := e.run(ctx, stmts)
	if err != nil {
		return err
	}
	for i, q := range retry {
		if errs[i] != nil {
			q.found, q.err = true, errs[i]
			continue
		}
		if err := s.applyCatalog([]*queue{q}, res[i], standby); err != nil {
			return err
		}
	}
	return nil
}

// catalogChunks cuts queues into the chunks one catalog statement reads.
func catalogChunks(queues []*queue) [][]*queue {
	var chunks [][]*queue
	for start := 0; start < len(queues); start += catalogChunk {
		chunks = append(chunks, queues[start:min(start+catalogChunk, len(queues))])
	}
	return chunks
}

// catalogStmts are the catalog statements of queues, one per chunk.
func (s *Sampler) catalogStmts(queues []*queue) []stmt {
	chunks := catalogChunks(queues)
	stmts := make([]stmt, len(chunks))
	for i, c := range chunks {
		stmts[i] = s.catalogStmt(c)
	}
	return stmts
}

func (s *Sampler) catalogStmt(qs []*queue) stmt {
	rels := make([]string, len(qs))
	seqs := make([]string, len(qs))
	for i, q := range qs {
		rels[i], seqs[i] = q.oid, q.seq
	}
	return s.sess.prep.stmt(catalogSQL, len(qs), "{"+strings.Join(rels, ",")+"}", "{"+strings.Join(seqs, ",")+"}")
}

// applyCatalog stores catalogSQL's rows for chunk.
func (s *Sampler) applyCatalog(chunk []*queue, res result, standby bool) error {
	return res.each(func(r row) error {
		i := r.int(colPos)
		if i < 1 || int(i) > len(chunk) {
			return fmt.Errorf("queuedepth: catalog row for position %q", r.text(colPos))
		}
		q := chunk[i-1]
		q.found = true
		q.in.threshold, q.in.standby = s.cfg.threshold, standby
		if r.bool(colRoot) && !r.null(colLastValue) {
			// An unlogged queue's sequence starts again at 0 with its
			// table after a crash or a promotion: a total that can go
			// back is left out.
			q.sent, q.sentKnown = r.int(colLastValue), !q.unlogged
		}
		if r.bool(colPartitioned) || r.null(colPages) {
			return nil // a partitioned table holds no rows itself; a NULL size: dropped meanwhile
		}
		q.in.leaves = append(q.in.leaves, leafStats{
			relTuples: r.float(colRelTuples),
			relPages:  r.int(colRelPages),
			pages:     r.int(colPages),
			live:      r.int(colLive),
			rebased:   r.bool(colRebased),
		})
		return nil
	})
}
