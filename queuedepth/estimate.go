package queuedepth

import "math"

// leafStats is what the catalog says about one table holding a queue's rows
// (the queue table, or one partition of a partitioned queue).
type leafStats struct {
	relTuples float64 // pg_class.reltuples; -1 never vacuumed or analyzed
	relPages  int64   // pg_class.relpages at that time
	pages     int64   // current size in pages
	live      int64   // pg_stat_get_live_tuples
	rebased   bool    // a VACUUM or ANALYZE set live since the statistics were last lost
}

// idSample is the result of depthSampleSQL.
type idSample struct {
	probes       int64 // ids looked up, one per stratum
	hits         int64 // of which exist
	visibleHits  int64 // of which are visible
	total        int64 // hits weighted by their stratum's width: the depth's estimate
	visibleTotal int64 // visible hits so weighted
	exhaustive   bool  // every id of the span was looked up
}

// depthInputs is everything the server reported about one queue.
type depthInputs struct {
	threshold int64
	standby   bool // pg_is_in_recovery(): the statistics count nothing
	leaves    []leafStats

	// From depthProbeSQL. hasRows false means the table was empty.
	hasRows              bool
	lo, hi               int64
	inv, vis             int64 // capped at threshold+1
	invCounted, visCount bool  // whether each count was made
	scanned              bool  // the counts come from a scan of a small table: exact, uncapped

	sample *idSample // nil until taken
}

// depthEstimate is what estimateDepth concluded.
type depthEstimate struct {
	depth, visible, invisible      int64
	visibleMethod, invisibleMethod Method
	source                         string
	// needSample: an id sample would settle what is missing; take it and
	// call estimateDepth again.
	needSample bool
	// unknown, when not empty, is why the depth is left out.
	unknown string
}

// totalPages is the pages of all the queue's tables.
func totalPages(leaves []leafStats) int64 {
	var n int64
	for _, l := range leaves {
		n += l.pages
	}
	return n
}

// maxRelativeError is how far from the truth an estimate may be, relative
// to the queue's depth, at two standard errors, for the id sample to be
// used.
const maxRelativeError = 0.01

// pages reports whether the catalog proves the queue empty: no table holds
// a single page.
func catalogEmpty(leaves []leafStats) bool {
	for _, l := range leaves {
		if l.pages > 0 {
			return false
		}
	}
	return true
}

// statsEstimate is the statistics' live rows, when they can be trusted: not
// on a standby, and re-based by a VACUUM or ANALYZE since they were last
// lost, for every table that holds a page. After a crash restart,
// pg_stat_reset() or a promotion they are 0, or count only what changed
// since, until the next VACUUM or ANALYZE.
func statsEstimate(in depthInputs) (int64, bool) {
	if in.standby {
		return 0, false
	}
	var n int64
	for _, l := range in.leaves {
		if l.pages == 0 {
			continue
		}
		if !l.rebased {
			return 0, false
		}
		n += max(l.live, 0)
	}
	return n, true
}

// plannerEstimate is PostgreSQL's own estimate of the rows: per table, the
// density at the last VACUUM or ANALYZE (reltuples / relpages) times the
// current number of pages. Unknown when a table holding pages was never
// vacuumed or analyzed, or held no page then.
func plannerEstimate(in depthInputs) (int64, bool) {
	var n float64
	for _, l := range in.leaves {
		if l.pages == 0 {
			continue
		}
		if l.relTuples < 0 || l.relPages <= 0 {
			return 0, false
		}
		n += l.relTuples / float64(l.relPages) * float64(l.pages)
	}
	return int64(math.Round(n)), true
}

// sampleEstimate is the id span times the share of sampled ids that exist,
// if its standard error is small enough.
func sampleEstimate(in depthInputs) (int64, bool) {
	s := in.sample
	if s == nil || s.probes == 0 || s.hits == 0 {
		return 0, false
	}
	if s.exhaustive {
		return s.hits, true
	}
	// Two standard errors of a simple random sample of the same size, in
	// which each id is present with probability p: a stratified sample does
	// no worse.
	p := float64(s.hits) / float64(s.probes)
	if 2*math.Sqrt((1-p)/(p*float64(s.probes))) > maxRelativeError {
		return 0, false
	}
	return s.total, true
}

// needsSplit reports whether neither state was counted exactly, so that
// an id sample must split the depth between them.
func needsSplit(in depthInputs) bool {
	t := in.threshold
	return !(in.invCounted && in.inv <= t) && !(in.visCount && in.vis <= t)
}

// estimateDepth turns what the server reported into a depth, never a
// made-up one:
//
//   - a state whose capped count is at or below the threshold is exact;
//   - the total comes from the statistics when they can be trusted, else
//     from an id sample, else (ids too sparse for the sample to be within
//     1 %) the planner's method: the first that agrees with what is known for sure: not
//     below what the capped counts prove (a count of threshold+1 proves
//     more than the threshold) and at most the id span (larger values are
//     cut to the span, which is exact for a queue consumed in order);
//   - a state above the threshold is the total minus the other state's
//     exact count; when both are above it, the split comes from an id
//     sample, and is left out when the sample cannot place it within 1 %
//     of the depth.
func estimateDepth(in depthInputs) depthEstimate {
	t := in.threshold
	if !in.hasRows {
		return depthEstimate{visibleMethod: MethodCount, invisibleMethod: MethodCount, source: SourceCount}
	}
	invExact := in.invCounted && (in.inv <= t || in.scanned)
	visExact := in.visCount && (in.vis <= t || in.scanned)
	if invExact && visExact {
		return depthEstimate{depth: in.inv + in.vis, visible: in.vis, invisible: in.inv,
			visibleMethod: MethodCount, invisibleMethod: MethodCount, source: SourceCount}
	}
	if s := in.sample; s != nil && s.exhaustive {
		// Every id was looked up: a count, taken a moment after the capped
		// counts. The states' exact counts, where made, stay.
		vis, inv := s.visibleHits, s.hits-s.visibleHits
		if invExact {
			inv = in.inv
			vis = max(s.hits-inv, 0)
		}
		if visExact {
			vis = in.vis
			inv = max(s.hits-vis, 0)
		}
		return depthEstimate{depth: vis + inv, visible: vis, invisible: inv,
			visibleMethod: MethodCount, invisibleMethod: MethodCount, source: SourceCount}
	}

	// What the counts prove, and the span's upper bound.
	var lower int64
	if in.invCounted {
		lower += in.inv
	}
	if in.visCount {
		lower += in.vis
	}
	upper := in.hi - in.lo + 1

	total, source := int64(-1), ""
	for _, c := range []struct {
		source string
		f      func(depthInputs) (int64, bool)
	}{
		{SourceLiveTuples, statsEstimate},
		{SourceIDSample, sampleEstimate},
		{SourcePlanner, plannerEstimate},
	} {
		if c.source == SourcePlanner && in.sample == nil {
			// The planner's method assumes rows as wide as at the last
			// ANALYZE; an id sample does not. Take one first, and fall
			// back on the planner only where it is too imprecise.
			return depthEstimate{needSample: true}
		}
		n, ok := c.f(in)
		if !ok {
			continue
		}
		n = min(n, upper)
		if n < lower {
			continue // refuted by a count
		}
		total, source = n, c.source
		break
	}
	if total < 0 {
		if in.sample == nil {
			return depthEstimate{needSample: true}
		}
		return depthEstimate{unknown: ReasonNoEstimate}
	}

	out := depthEstimate{depth: total, source: source,
		visibleMethod: MethodEstimate, invisibleMethod: MethodEstimate}
	switch {
	case invExact:
		out.invisible, out.invisibleMethod = in.inv, MethodCount
		out.visible = total - in.inv
	case visExact:
		out.visible, out.visibleMethod = in.vis, MethodCount
		out.invisible = total - in.vis
	default:
		s := in.sample
		if s == nil {
			return depthEstimate{needSample: true}
		}
		if s.hits == 0 {
			return depthEstimate{unknown: ReasonSplitUncertain}
		}
		if s.total == 0 {
			return depthEstimate{unknown: ReasonSplitUncertain}
		}
		f := float64(s.visibleTotal) / float64(s.total)
		if 2*math.Sqrt(f*(1-f)/float64(s.hits)) > maxRelativeError {
			return depthEstimate{unknown: ReasonSplitUncertain}
		}
		out.visible = int64(math.Round(f * float64(total)))
		out.invisible = total - out.visible
		// Each state is above the threshold where its count proved it.
		if (in.visCount && out.visible < in.vis) || (in.invCounted && out.invisible < in.inv) {
			return depthEstimate{unknown: ReasonSplitUncertain}
		}
	}
	return out
}
