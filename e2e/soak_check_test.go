//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The soak's checks, made after the run from what the Collector delivered
// and what the database and the driver know.

// countHistory is a queue's count(*) through time, rebuilt from its rows:
// each message adds one from its enqueued_at, and one archived removes it
// at its archived_at (the orchestrator archives what it processed, and
// deletes nothing). The steps are the transactions' start times, a few
// milliseconds before their commits; the checks allow for that.
type countHistory struct {
	times  []time.Time // sorted
	deltas []int64
	prefix []int64 // count after times[i]
}

func loadHistory(ctx context.Context, pool *pgxpool.Pool, queue string) (*countHistory, error) {
	rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT enqueued_at, 1 FROM pgmq.q_%[1]s
		UNION ALL SELECT enqueued_at, 1 FROM pgmq.a_%[1]s
		UNION ALL SELECT archived_at, -1 FROM pgmq.a_%[1]s
		ORDER BY 1, 2 DESC`, queue))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	h := &countHistory{}
	var n int64
	for rows.Next() {
		var at time.Time
		var d int64
		if err := rows.Scan(&at, &d); err != nil {
			return nil, err
		}
		n += d
		h.times, h.deltas, h.prefix = append(h.times, at), append(h.deltas, d), append(h.prefix, n)
	}
	return h, rows.Err()
}

// at returns the count just after t.
func (h *countHistory) at(t time.Time) int64 {
	i := sort.Search(len(h.times), func(i int) bool { return h.times[i].After(t) })
	if i == 0 {
		return 0
	}
	return h.prefix[i-1]
}

// span returns the least and the greatest count over [lo, hi].
func (h *countHistory) span(lo, hi time.Time) (least, most int64) {
	least = h.at(lo)
	most = least
	i := sort.Search(len(h.times), func(i int) bool { return h.times[i].After(lo) })
	for ; i < len(h.times) && !h.times[i].After(hi); i++ {
		least, most = min(least, h.prefix[i]), max(most, h.prefix[i])
	}
	return least, most
}

// churnQueue is the driver's record of one queue it created, filled and
// dropped: its count is 0 until the send commits (somewhere between
// sendStart and sendEnd), then n until the drop commits.
type churnQueue struct {
	n                  int64
	created            time.Time
	sendStart, sendEnd time.Time
	dropStart, dropEnd time.Time // zero while not dropped
	uncertain          bool      // a statement failed mid-way: its outcome is unknown
}

// possible reports whether a depth of v may have been sampled from q at
// some time in [lo, hi].
func (q *churnQueue) possible(v int64, lo, hi time.Time) bool {
	exists := q.dropEnd.IsZero() || lo.Before(q.dropEnd)
	switch {
	case !exists || hi.Before(q.created):
		return false
	case v == 0:
		return q.sendEnd.IsZero() || lo.Before(q.sendEnd)
	case v == q.n:
		return !q.sendStart.IsZero() && !hi.Before(q.sendStart)
	}
	return false
}

// span is one replica's run of depth reports, none more than gapAfter
// apart.
type span struct {
	instance string
	from, to time.Time
}

// reportingSpans groups each replica's depth reports into spans.
func reportingSpans(recs []depthRecord, gapAfter time.Duration) []span {
	last := map[string]*span{}
	var out []*span
	for _, r := range recs {
		s := last[r.instance]
		if s != nil && r.at.Sub(s.to) <= gapAfter {
			s.to = r.at
			continue
		}
		s = &span{instance: r.instance, from: r.at, to: r.at}
		last[r.instance] = s
		out = append(out, s)
	}
	spans := make([]span, len(out))
	for i, s := range out {
		spans[i] = *s
	}
	return spans
}

// overlaps lists pairs of spans of different replicas that overlap in
// time: two samplers reporting in the same interval.
func overlaps(spans []span) []string {
	var out []string
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if a.instance != b.instance && a.from.Before(b.to) && b.from.Before(a.to) {
				out = append(out, fmt.Sprintf("%s %s..%s and %s %s..%s", a.instance, a.from.Format(time.TimeOnly), a.to.Format(time.TimeOnly),
					b.instance, b.from.Format(time.TimeOnly), b.to.Format(time.TimeOnly)))
			}
		}
	}
	return out
}

// window is a time range with the reason points may be missing in it.
type window struct {
	from, to time.Time
	cause    string
}

// gap is a stretch without any depth report of a queue.
type gap struct {
	from, to time.Time
	cause    string // "" when nothing explains it
}

// gaps finds the stretches longer than gapAfter between consecutive
// reports of a queue (from any replica), and names the first known cause
// overlapping each: an event window, or a rise of pgmq.sampler.errors
// (the failure counted).
func gaps(times []time.Time, gapAfter time.Duration, causes []window, errs []errorPoint) []gap {
	var out []gap
	for i := 1; i < len(times); i++ {
		if times[i].Sub(times[i-1]) <= gapAfter {
			continue
		}
		g := gap{from: times[i-1], to: times[i]}
		for _, c := range causes {
			if c.from.Before(g.to) && g.from.Before(c.to) {
				g.cause = c.cause
				break
			}
		}
		if g.cause == "" && errorsRose(errs, g.from, g.to) {
			g.cause = "sampler errors counted"
		}
		out = append(out, g)
	}
	return out
}

// errorsRose reports whether some replica's pgmq.sampler.errors total rose
// between from and to (to included, since the count comes with the next
// report).
func errorsRose(errs []errorPoint, from, to time.Time) bool {
	last := map[string]float64{}
	for _, e := range errs {
		prev, seen := last[e.instance]
		last[e.instance] = e.total
		if seen && e.total > prev && !e.at.Before(from) && !e.at.After(to.Add(5*time.Second)) {
			return true
		}
	}
	return false
}

// slope fits y = a + b·t by least squares and returns b per minute.
func slope(xs []time.Time, ys []float64) float64 {
	if len(xs) < 3 {
		return 0
	}
	t0 := xs[0]
	var sx, sy, sxx, sxy float64
	n := float64(len(xs))
	for i := range xs {
		x := xs[i].Sub(t0).Minutes()
		sx, sy, sxx, sxy = sx+x, sy+ys[i], sxx+x*x, sxy+x*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// resourceSlopes returns, per replica incarnation measured for at least
// minSpan after warmUp, the slopes of resident memory (KiB/min) and
// goroutines (/min), with the first and last readings.
func resourceSlopes(name string, rs []usage, warmUp, minSpan time.Duration) []string {
	byInc := map[int][]usage{}
	for _, r := range rs {
		byInc[r.incarnation] = append(byInc[r.incarnation], r)
	}
	var out []string
	for inc := 1; inc <= len(byInc)+len(rs); inc++ {
		all, ok := byInc[inc]
		if !ok {
			continue
		}
		var xs []time.Time
		var rss, gor []float64
		for _, r := range all {
			if r.at.Sub(all[0].at) < warmUp {
				continue
			}
			xs, rss, gor = append(xs, r.at), append(rss, r.rssKiB), append(gor, r.goroutines)
		}
		if len(xs) < 3 || xs[len(xs)-1].Sub(xs[0]) < minSpan {
			continue
		}
		out = append(out, fmt.Sprintf("%s #%d over %v (%d readings): RSS %.0f→%.0f KiB, slope %+.1f KiB/min; goroutines %.0f→%.0f, slope %+.2f/min",
			name, inc, xs[len(xs)-1].Sub(xs[0]).Round(time.Second), len(xs), rss[0], rss[len(rss)-1], slope(xs, rss),
			gor[0], gor[len(gor)-1], slope(xs, gor)))
	}
	return out
}

// tally counts things by name, printed in a stable order.
type tally map[string]int

func (t tally) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, t[k])
	}
	return strings.Join(parts, ", ")
}

// errorsCounted sums the rises of each replica's pgmq.sampler.errors (a
// restarted replica counts from 0 again).
func errorsCounted(errs []errorPoint) float64 {
	last := map[string]float64{}
	var sum float64
	for _, e := range errs {
		prev := last[e.instance]
		switch {
		case e.total > prev:
			sum += e.total - prev
		case e.total < prev: // restarted
			sum += e.total
		}
		last[e.instance] = e.total
	}
	return sum
}
