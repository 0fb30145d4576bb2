package otelmetrics

import (
	"context"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Snapshot is what an orchestrator serves on its health endpoint: the same
// samples the metrics report, with the time each was taken. It marshals to
// JSON with stable, snake_case field names.
type Snapshot struct {
	// Time is when the snapshot was assembled.
	Time time.Time `json:"time"`
	// ActiveProcessors is the number of processors running now, all kinds.
	ActiveProcessors int64 `json:"active_processors"`
	// Processors is the number running now per kind.
	Processors map[string]int64 `json:"processors"`
	// Pools is keyed by pool name; sampled at Time.
	Pools map[string]PoolSnapshot `json:"pools"`
	// Queues is keyed by queue name. It is empty when queue sampling is
	// off, when this instance is a standby, or when the last sample failed
	// (see QueueSampler).
	Queues map[string]QueueSnapshot `json:"queues"`
	// QueueSampler describes the queue sampler's state; nil when queue
	// sampling is off.
	QueueSampler *SamplerSnapshot `json:"queue_sampler,omitempty"`
}

// PoolSnapshot is one pool's sample.
type PoolSnapshot struct {
	Utilization float64 `json:"utilization"`
	Used        int32   `json:"used"`
	Idle        int32   `json:"idle"`
	Total       int32   `json:"total"`
	Max         int32   `json:"max"`
}

// QueueSnapshot is one queue's sample.
type QueueSnapshot struct {
	Depth            int64   `json:"depth"`
	Visible          int64   `json:"visible"`
	Invisible        int64   `json:"invisible"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// TotalSent is left out (0, total_sent_known false) on a standby.
	TotalSent      int64 `json:"total_sent"`
	TotalSentKnown bool  `json:"total_sent_known"`
	// Estimated is true when Depth is an estimate because the queue is
	// deeper than the exact-count threshold.
	Estimated bool `json:"estimated"`
	// VisibleMethod and InvisibleMethod are "count" or "estimate", as the
	// pgmq.depth.method attribute of the exported points; Source says what
	// an estimate rests on (live_tuples, id_sample, planner; count when
	// none was needed).
	VisibleMethod   string `json:"visible_method,omitempty"`
	InvisibleMethod string `json:"invisible_method,omitempty"`
	Source          string `json:"source,omitempty"`
	// Error, when set, says why this queue's figures are missing (the
	// queue does not exist, its table was locked, its depth could not be
	// known); its depth fields are then 0 and were not exported.
	Error string `json:"error,omitempty"`
}

// SamplerSnapshot describes the last queue sampling attempt.
type SamplerSnapshot struct {
	Role SamplerRole `json:"role"`
	// Reason says why this instance is not the sampler: "held" (another
	// replica leads), "unhealthy" (its exports fail and a healthy replica leads), "read_only" (its
	// database is a standby), "lost" or "untrusted" (its term ended).
	Reason string `json:"reason,omitempty"`
	// SampledAt is when the last attempt ended; zero before the first.
	SampledAt time.Time `json:"sampled_at"`
	// Healthy is false when the last attempt failed, for example because
	// the database is unreachable; Error then says why.
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// Snapshot assembles the current figures. Processors and pools are read
// from memory; queues come from the queue sampler, which reuses a sample
// younger than the minimum interval and otherwise takes one bounded by the
// sample timeout and by ctx. Snapshot therefore returns within the sample
// timeout even when the database is down, reporting it as unhealthy.
func (m *Metrics) Snapshot(ctx context.Context) Snapshot {
	snap := Snapshot{
		Time:       m.cfg.now(),
		Processors: m.ActiveProcessorsByKind(),
		Pools:      make(map[string]PoolSnapshot, len(m.pools)),
		Queues:     map[string]QueueSnapshot{},
	}
	for _, n := range snap.Processors {
		snap.ActiveProcessors += n
	}
	for _, p := range m.pools {
		s, _ := p.stats()
		snap.Pools[p.name] = PoolSnapshot{Utilization: s.Utilization, Used: s.Used, Idle: s.Idle, Total: s.Total, Max: s.Max}
	}
	if m.sampler == nil {
		return snap
	}
	sample, err := m.sampler.get(ctx)
	if sample == nil {
		// ctx ended while another sample was in progress: report the
		// previous one if any.
		sample = m.sampler.last.Load()
	}
	ss := &SamplerSnapshot{Role: RoleUnknown}
	snap.QueueSampler = ss
	switch {
	case sample == nil:
		ss.Error = err.Error()
	case sample.err != nil:
		ss.SampledAt, ss.Error = sample.at, sample.err.Error()
	default:
		ss.Role, ss.Reason, ss.SampledAt, ss.Healthy = sample.role, sample.reason, sample.at, true
		if sample.role == RoleSampler && !m.sampler.current(sample) {
			// Taken in a term that has ended since: another replica
			// may be reporting now.
			ss.Role, ss.Reason = RoleStandby, "untrusted"
		}
		if ss.Role != RoleSampler {
			break
		}
		for _, d := range sample.depths {
			snap.Queues[d.Queue] = queueSnapshot(d)
		}
	}
	return snap
}

// queueSnapshot is d as the snapshot shows it.
func queueSnapshot(d pgmqclient.QueueDepth) QueueSnapshot {
	if d.Err != nil {
		return QueueSnapshot{Error: d.Err.Error(), TotalSent: d.TotalSent, TotalSentKnown: d.TotalSentKnown,
			OldestAgeSeconds: d.OldestAge.Seconds()}
	}
	return QueueSnapshot{
		Depth:            d.Depth,
		Visible:          d.Visible,
		Invisible:        d.Invisible,
		OldestAgeSeconds: d.OldestAge.Seconds(),
		TotalSent:        d.TotalSent,
		TotalSentKnown:   d.TotalSentKnown,
		Estimated:        d.Estimated,
		VisibleMethod:    string(d.VisibleMethod),
		InvisibleMethod:  string(d.InvisibleMethod),
		Source:           d.Source,
	}
}
