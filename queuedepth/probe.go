package queuedepth

import (
	"context"
	"fmt"
	"strconv"
)

// sampleProbes is how many ids an id sample looks up to estimate the
// depth: with 90 % of the ids present, two standard errors are 0.5 % of
// the depth. splitProbes is how many it looks up when it must also split
// the depth into visible and invisible (both above the threshold): two
// standard errors of a state's share are then at most 0.4 % of the depth.
const (
	sampleProbes = 16384
	splitProbes  = 65536
)

// scanPages is the largest table, in pages, that a probe reads with one
// scan rather than through its indexes; maxRowsPerPage bounds the rows of
// a page (PostgreSQL's MaxHeapTuplesPerPage for 8 kB pages), so that a
// scanned table is known to hold no more than the threshold.
const (
	scanPages      = 8
	maxRowsPerPage = 291
)

// probe reads the tables the catalog does not prove empty, then takes an
// id sample where the estimate needs one. sp are statements sent ahead;
// their results are used when the probe statements turn out the same.
func (s *Sampler) probe(ctx context.Context, e *executor, queues []*queue, sp speculated) error {
	t := s.cfg.threshold
	var (
		probed []*queue
		stmts  []stmt
		deep   []*queue // probed together, by one prepared statement
	)
	grouping := s.sess.prep.on
	for _, q := range queues {
		if q.found && q.err == nil && q.unlogged && q.in.standby {
			// Its rows live on the primary only; the standby's file is
			// empty, which would read as an empty queue.
			q.err = ErrUnloggedOnStandby
			continue
		}
		if !q.found || q.err != nil || catalogEmpty(q.in.leaves) {
			continue
		}
		// Whether the visible count can be spared: trusted statistics
		// must say the queue is above the threshold, the planner's method
		// (a guess here) twice above; the probe counts anyway when the id
		// span is below twice the threshold.
		est, big := bigQueue(q.in, t)
		q.invLimit = t + 1
		if big && !q.vtIndex {
			q.invLimit = 0
		}
		if pages := totalPages(q.in.leaves); pages <= scanPages && pages*maxRowsPerPage <= t {
			q.in.invCounted, q.in.scanned = true, true
			probed = append(probed, q)
			stmts = append(stmts, stmt{sql: scanSQL(q.rel), queues: 1})
			continue
		}
		q.in.invCounted = q.invLimit > 0
		if big && grouping && len(deep) < maxPreparedProbes {
			q.groupVis = s.groupVis[q.rel]
			deep = append(deep, q)
			continue
		}
		probed = append(probed, q)
		stmts = append(stmts, stmt{sql: probeSQL(q.rel, q.vtIndex), args: probeArgs(t, q.invLimit, !big, est), queues: 1})
	}
	n := len(stmts)
	if len(deep) > 0 {
		branches := make([]groupBranch, len(deep))
		for i, q := range deep {
			branches[i] = groupBranch{rel: q.rel, vtIndex: q.vtIndex, invLimit: q.invLimit, visible: q.groupVis}
		}
		sql := groupSQL(branches, t)
		stmts = append(stmts, stmt{sql: sql, name: s.sess.prep.want(sql), queues: len(deep)})
	}
	// Deallocates the group statement of a former set of deep queues.
	if err := s.sess.prep.sync(ctx, e.conn, stmts[n:]); err != nil {
		return err
	}
	var (
		res  []result
		errs []error
		err  error
	)
	if sp.matches(stmts) {
		res, errs = sp.results, sp.errs
	} else if res, errs, err = e.run(ctx, stmts); err != nil {
		return err
	}
	if len(stmts) <= maxSpeculated && !e.inTx {
		s.sess.spec = stmts
	}
	if err := applyProbes(probed, res[:n], errs[:n]); err != nil {
		return err
	}
	if len(deep) > 0 {
		if err := s.applyGroup(ctx, e, deep, res[n], errs[n]); err != nil {
			return err
		}
		probed = append(probed, deep...)
	}
	return s.idSample(ctx, e, probed)
}

// applyGroup stores the group probe's rows. A branch that left the
// visible count out, where the probe would have made it: that queue is
// probed again alone, and its branch makes the count from the next sample
// on. A group that failed (a locked table) is probed queue by queue, so
// the failure stays with its queue.
func (s *Sampler) applyGroup(ctx context.Context, e *executor, deep []*queue, res result, gerr error) error {
	if gerr != nil {
		return s.probeAlone(ctx, e, deep)
	}
	if err := res.each(func(r row) error {
		i := r.int(colPos)
		if i < 0 || int(i) >= len(deep) {
			return fmt.Errorf("queuedepth: probe row for position %q", r.text(colPos))
		}
		applyProbe(deep[i], r)
		return nil
	}); err != nil {
		return err
	}
	var again []*queue
	groupVis := make(map[string]bool)
	for _, q := range deep {
		if needsVisibleCount(q.in, s.cfg.threshold) {
			groupVis[q.rel] = true
			if !q.groupVis {
				again = append(again, q)
			}
		}
	}
	s.groupVis = groupVis
	return s.probeAlone(ctx, e, again)
}

// idSample looks ids up in the probed queues whose estimate needs it.
func (s *Sampler) idSample(ctx context.Context, e *executor, probed []*queue) error {
	var (
		sampled []*queue
		stmts   []stmt
	)
	for _, q := range probed {
		if q.err != nil || !q.in.hasRows {
			continue
		}
		if estimateDepth(q.in).needSample {
			sampled = append(sampled, q)
			stmts = append(stmts, sampleStmt(q))
		}
	}
	if len(stmts) == 0 {
		return nil
	}
	res, errs, err := e.run(ctx, stmts)
	if err != nil {
		return err
	}
	for i, q := range sampled {
		if errs[i] != nil {
			q.err = errs[i]
			continue
		}
		r, ok := res[i].first()
		if !ok {
			return fmt.Errorf("queuedepth: id sample of %s returned no row", q.name)
		}
		sm := q.in.sample
		sm.hits, sm.visibleHits = r.int(colHits), r.int(colVisibleHits)
		sm.total, sm.visibleTotal = r.int(colTotal), r.int(colVisibleTotal)
	}
	return nil
}

// applyProbe stores a probe's row (probeSQL's columns).
func applyProbe(q *queue, r row) {
	q.in.hasRows = false
	if r.null(colLo) || r.null(colHi) {
		return // empty
	}
	q.in.hasRows = true
	q.in.lo, q.in.hi = r.int(colLo), r.int(colHi)
	q.age = r.float(colAge)
	q.in.inv, q.in.vis = r.int(colInvisible), r.int(colVisible)
	q.in.visCount = r.bool(colVisCounted)
}

// applyProbes applies the probe results of qs, in order: a statement that
// failed marks its queue's error, one that answered applies its single row.
func applyProbes(qs []*queue, res []result, errs []error) error {
	for i, q := range qs {
		if errs[i] != nil {
			q.err = errs[i]
			continue
		}
		if len(res[i].rows) != 1 {
			return fmt.Errorf("queuedepth: probe of %s returned %d rows", q.name, len(res[i].rows))
		}
		r, _ := res[i].first()
		applyProbe(q, r)
	}
	return nil
}

// needsVisibleCount reports whether the probe of a queue above the
// threshold makes the visible count (probeSQL's condition): the invisible
// count passed the threshold, or the id span is below twice the threshold.
func needsVisibleCount(in depthInputs, t int64) bool {
	est, big := bigQueue(in, t)
	return in.hasRows && (!big || in.inv > t || in.hi-in.lo < 2*(t+1) || est-in.inv <= t)
}

// bigQueue returns the estimate of a queue's depth from its statistics
// (or, short of trusted ones, the planner's method) and whether it says
// the queue is so far above the threshold t that its visible count may be
// spared: trusted statistics above t+1, the planner's guess above twice
// that. The probe still counts when the estimate leaves t or fewer visible
// messages beside the counted invisible ones: a visible side at or below
// the threshold is counted, never estimated, and a count above it refutes
// statistics gone stale (a switchover and back keeps a table's old
// n_live_tup with its vacuum times).
func bigQueue(in depthInputs, t int64) (est int64, big bool) {
	if est, ok := statsEstimate(in); ok {
		return est, est > t+1
	}
	if est, ok := plannerEstimate(in); ok {
		return est, est > 2*(t+1)
	}
	return 0, false
}

// probeArgs are probeSQL's arguments: the threshold, the invisible count's
// cap, whether to count the visible side in any case, and the estimate
// that may spare it.
func probeArgs(t, invLimit int64, countVisible bool, est int64) []string {
	return []string{strconv.FormatInt(t, 10), strconv.FormatInt(invLimit, 10), strconv.FormatBool(countVisible), strconv.FormatInt(est, 10)}
}

// probeAlone probes each of the deep queues with its own statement.
func (s *Sampler) probeAlone(ctx context.Context, e *executor, deep []*queue) error {
	if len(deep) == 0 {
		return nil
	}
	t := s.cfg.threshold
	stmts := make([]stmt, len(deep))
	for i, q := range deep {
		est, _ := bigQueue(q.in, t)
		stmts[i] = stmt{sql: probeSQL(q.rel, q.vtIndex), args: probeArgs(t, q.invLimit, false, est), queues: 1}
	}
	res, errs, err := e.run(ctx, stmts)
	if err != nil {
		return err
	}
	return applyProbes(deep, res, errs)
}

// sampleStmt draws sampleProbes ids (splitProbes when the states must be
// split) in as many strata of the queue's id span, or every id when the
// span is no larger.
func sampleStmt(q *queue) stmt {
	span := q.in.hi - q.in.lo + 1
	k := int64(sampleProbes)
	if needsSplit(q.in) {
		k = splitProbes
	}
	step := float64(span) / float64(k)
	if span <= k {
		k, step = span, 1
	}
	q.in.sample = &idSample{probes: k, exhaustive: span == k && step == 1}
	return stmt{sql: idSampleSQL(q.rel), queues: 1, args: []string{
		strconv.FormatInt(q.in.lo, 10), strconv.FormatInt(k, 10), strconv.FormatFloat(step, 'g', -1, 64)}}
}
