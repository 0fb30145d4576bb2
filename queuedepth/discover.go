package queuedepth

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// queue is one discovered queue and what the sample learnt about it.
type queue struct {
	name     string
	rel      string
	oid      string
	seq      string
	vtIndex  bool
	unlogged bool // rows unreadable on a standby, lost in a crash

	found     bool // the catalog still had the table
	in        depthInputs
	sent      int64
	sentKnown bool
	age       float64
	err       error
	invLimit  int64 // the invisible count's cap in the probe; 0: not counted
	// groupVis: the group probe's branch of this queue makes the visible
	// count when needed (else it leaves it out).
	groupVis bool
}

// discovery is what the first stage found.
type discovery struct {
	queues  []*queue
	now     time.Time // the server's clock
	standby bool
	pid     uint32 // the serving backend's process id; 0 when no queue
	// extra and extraErrs are the results of the statements sent along.
	extra     []result
	extraErrs []error
}

// discover lists the selected queues with the server's clock. extra
// statements are run in the same round trip, after the discovery (in its
// transaction when join); their results are returned as they are.
func (s *Sampler) discover(ctx context.Context, e *executor, extra []stmt, join bool) (discovery, error) {
	disc := s.sess.prep.stmt(discoverSQL, 0, textArray(s.cfg.names))
	disc.joinNext = join && len(extra) > 0
	all, errs, err := e.run(ctx, append([]stmt{disc}, extra...))
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return discovery{}, err
	}
	d := discovery{extra: all[1:], extraErrs: errs[1:], now: time.Now()}
	first, ok := all[0].first()
	if !ok {
		return d, nil // no queue: nothing is reported, so the local clock will do
	}
	if d.now, err = time.Parse("2006-01-02T15:04:05.999999Z", first.text(colClock)); err != nil {
		return discovery{}, fmt.Errorf("queuedepth: server clock %q: %w", first.text(colClock), err)
	}
	d.standby = first.bool(colStandby)
	d.pid = uint32(first.int(colPID))
	err = all[0].each(func(r row) error {
		q := &queue{name: r.text(colQueue), rel: r.text(colRel), oid: r.text(colRelOID), seq: r.text(colSeqOID),
			vtIndex: r.bool(colVTIndex), unlogged: r.bool(colUnlogged)}
		if MatchPatterns(q.name, s.cfg.include, s.cfg.exclude) {
			d.queues = append(d.queues, q)
		}
		return nil
	})
	return d, err
}

// sameQueues reports whether two discoveries found the same tables.
func sameQueues(a, b []*queue) bool {
	return slices.EqualFunc(a, b, func(x, y *queue) bool {
		return x.name == y.name && x.oid == y.oid && x.seq == y.seq && x.rel == y.rel
	})
}

// textArray is names as a PostgreSQL array literal, each element quoted
// (names may hold commas, quotes, braces, backslashes and spaces).
func textArray(names []string) string {
	b := []byte{'{'}
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(n); j++ {
			if n[j] == '"' || n[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, n[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}
