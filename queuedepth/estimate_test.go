package queuedepth

import "testing"

// TestEstimateDepth feeds estimateDepth what the server reports in each
// statistics state and checks that the depth is exact, within 1 %, or left
// out: never a made-up number. The queue holds 1,000,000 messages, ids 1 to
// 1,000,000, in 10,000 pages, unless the case says otherwise; threshold
// 1,000.
func TestEstimateDepth(t *testing.T) {
	const (
		T     = 1000
		truth = 1_000_000
	)
	analyzed := leafStats{relTuples: truth, relPages: 10_000, pages: 10_000, live: truth, rebased: true}
	lost := analyzed // crash restart, pg_stat_reset(), promotion: counters gone
	lost.live, lost.rebased = 0, false
	neverAnalyzed := leafStats{relTuples: -1, pages: 10_000, live: truth}
	base := func(l ...leafStats) depthInputs {
		return depthInputs{threshold: T, leaves: l, hasRows: true, lo: 1, hi: truth,
			inv: 0, invCounted: true}
	}
	// sample is an id sample of a span of 1,000,000 ids (plus extra): hits
	// of 16,384 strata present, vis of them visible.
	sample := func(hits, vis, extra int64) *idSample {
		w := float64(truth+extra) / 16384
		return &idSample{probes: 16384, hits: hits, visibleHits: vis,
			total: int64(float64(hits) * w), visibleTotal: int64(float64(vis) * w)}
	}
	sparse := sample(50, 50, 0)

	type want struct {
		depth, visible, invisible int64
		vm, im                    Method
		source                    string
		needSample                bool
		unknown                   string
	}
	cases := []struct {
		name string
		in   func() depthInputs
		want want
	}{
		{"empty table", func() depthInputs { return depthInputs{threshold: T} }, want{vm: MethodCount, im: MethodCount, source: SourceCount}},
		{"both counts at or below the threshold", func() depthInputs {
			in := base(analyzed)
			in.hi, in.inv, in.vis, in.visCount = 1500, 300, 700, true
			return in
		}, want{depth: 1000, visible: 700, invisible: 300, vm: MethodCount, im: MethodCount, source: SourceCount}},
		{"current statistics, all visible", func() depthInputs { return base(analyzed) },
			want{depth: truth, visible: truth, vm: MethodEstimate, im: MethodCount, source: SourceLiveTuples}},
		{"statistics lost (crash, reset, promotion): needs an id sample", func() depthInputs { return base(lost) },
			want{needSample: true}},
		{"statistics lost, 2,000 more sent: the id sample", func() depthInputs {
			in := base(lost)
			in.hi = truth + 2000
			in.sample = sample(16384, 16384, 2000)
			return in
		}, want{depth: truth + 2000, visible: truth + 2000, vm: MethodEstimate, im: MethodCount, source: SourceIDSample}},
		{"statistics lost, ids too sparse for the sample: the planner's method", func() depthInputs {
			l := lost
			l.pages = 10_200
			in := base(l)
			in.hi = 3 * truth
			in.sample = sparse
			return in
		}, want{depth: truth + 20_000, visible: truth + 20_000, vm: MethodEstimate, im: MethodCount, source: SourcePlanner}},
		{"statistics counting only since a reset: refuted by the capped count", func() depthInputs {
			l := analyzed
			l.live = 500 // below what the count proves
			in := base(l)
			in.vis, in.visCount = T+1, true
			in.sample = sample(16384, 16384, 0)
			return in
		}, want{depth: truth, visible: truth, vm: MethodEstimate, im: MethodCount, source: SourceIDSample}},
		{"hot standby: statistics are zero, not used", func() depthInputs {
			in := base(analyzed)
			in.standby = true
			in.leaves[0].live = 0
			in.sample = sample(16384, 16384, 0)
			return in
		}, want{depth: truth, visible: truth, vm: MethodEstimate, im: MethodCount, source: SourceIDSample}},
		{"never analyzed: needs an id sample", func() depthInputs { return base(neverAnalyzed) },
			want{needSample: true}},
		{"never analyzed, id sample taken", func() depthInputs {
			in := base(neverAnalyzed)
			in.sample = sample(16384, 16384, 0)
			return in
		}, want{depth: truth, visible: truth, vm: MethodEstimate, im: MethodCount, source: SourceIDSample}},
		{"drifted statistics above the id span are cut to it", func() depthInputs {
			l := analyzed
			l.live = 2 * truth
			return base(l)
		}, want{depth: truth, visible: truth, vm: MethodEstimate, im: MethodCount, source: SourceLiveTuples}},
		{"all invisible: visible counted, never derived from the capped invisible count", func() depthInputs {
			in := base(analyzed)
			in.inv, in.vis, in.visCount = T+1, 0, true
			return in
		}, want{depth: truth, visible: 0, invisible: truth, vm: MethodCount, im: MethodEstimate, source: SourceLiveTuples}},
		{"both states above the threshold: needs the split", func() depthInputs {
			in := base(analyzed)
			in.inv, in.vis, in.visCount = T+1, T+1, true
			return in
		}, want{needSample: true}},
		{"both states above the threshold, split from the id sample", func() depthInputs {
			in := base(analyzed)
			in.inv, in.vis, in.visCount = T+1, T+1, true
			in.sample = sample(16384, 8192, 0)
			return in
		}, want{depth: truth, visible: truth / 2, invisible: truth / 2, vm: MethodEstimate, im: MethodEstimate, source: SourceLiveTuples}},
		{"split too uncertain: left out", func() depthInputs {
			in := base(analyzed)
			in.inv, in.vis, in.visCount = T+1, T+1, true
			in.sample = sample(200, 100, 0) // sparse ids
			return in
		}, want{unknown: ReasonSplitUncertain}},
		{"statistics lost and never analyzed, sparse ids: left out", func() depthInputs {
			l := neverAnalyzed
			l.live, l.rebased = 0, false
			in := base(l)
			in.sample = sparse
			return in
		}, want{unknown: ReasonNoEstimate}},
		{"every id looked up: a count", func() depthInputs {
			in := base(neverAnalyzed)
			in.hi = 5000
			in.sample = &idSample{probes: 5000, hits: 4000, visibleHits: 4000, exhaustive: true}
			return in
		}, want{depth: 4000, visible: 4000, vm: MethodCount, im: MethodCount, source: SourceCount}},
		{"partitioned: the planner's method summed over the leaves", func() depthInputs {
			p1 := lost
			p1.relTuples, p1.relPages, p1.pages = 500_000, 5000, 5000
			p2 := p1
			p3 := leafStats{relTuples: -1} // premade, empty
			in := base(p1, p2, p3)
			in.sample = sparse
			return in
		}, want{depth: truth, visible: truth, vm: MethodEstimate, im: MethodCount, source: SourcePlanner}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := estimateDepth(c.in())
			got := want{e.depth, e.visible, e.invisible, e.visibleMethod, e.invisibleMethod, e.source, e.needSample, e.unknown}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
			if e.unknown == "" && !e.needSample && e.visible+e.invisible != e.depth {
				t.Errorf("visible %d + invisible %d != depth %d", e.visible, e.invisible, e.depth)
			}
		})
	}
}
