package otelmetrics

import (
	"context"
	"time"

	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
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
	// Databases are the sampled databases, in the order they were given
	// (WithQueueSampling, WithQueueSampler); empty without queue sampling.
	Databases []DatabaseSnapshot `json:"databases"`
}

// PoolSnapshot is one pool's sample.
type PoolSnapshot struct {
	Utilization float64 `json:"utilization"`
	Used        int32   `json:"used"`
	Idle        int32   `json:"idle"`
	Total       int32   `json:"total"`
	Max         int32   `json:"max"`
}

// DatabaseSnapshot is one database's queue sampler and its queues.
type DatabaseSnapshot struct {
	// ServerAddress, ServerPort and Namespace identify the database as the
	// points' server.address, server.port and db.namespace do.
	ServerAddress string `json:"server_address"`
	ServerPort    int    `json:"server_port"`
	Namespace     string `json:"db_namespace"`
	// Role says whether this instance samples the database's queues;
	// Reason says why not ("held": another replica leads; "unhealthy":
	// its exports fail and a healthy replica leads; "read_only": the
	// database is a standby; "lost" or "untrusted": its term ended).
	Role   queuesampler.Role `json:"role"`
	Reason string            `json:"reason,omitempty"`
	// SampledAt is when the last attempt ended; zero before the first.
	SampledAt time.Time `json:"sampled_at"`
	// Healthy is false when the last attempt failed, for example because
	// the database is unreachable; Error then says why.
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
	// Queues is keyed by queue name; empty unless Role is "sampler".
	Queues map[string]QueueSnapshot `json:"queues"`
}

// QueueSnapshot is one queue's sample. A figure that is not known is
// null (nil), never 0: the queue could not be sampled (Error says why),
// or its depth could not be known within the sampler's bounds.
type QueueSnapshot struct {
	Depth     *int64 `json:"depth"`
	Visible   *int64 `json:"visible"`
	Invisible *int64 `json:"invisible"`
	// OldestAgeSeconds is the age of the oldest message; 0 when empty.
	OldestAgeSeconds *float64 `json:"oldest_age_seconds"`
	// TotalSent is the messages ever sent; null on a standby and for
	// unlogged queues (see pgmq.queue.sent.messages).
	TotalSent *int64 `json:"total_sent"`
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
	// known); they were not exported either.
	Error string `json:"error,omitempty"`
}

// Snapshot assembles the current figures. Processors and pools are read
// from memory; queues come from the queue samplers, which reuse a sample
// younger than the minimum interval and otherwise take one bounded by the
// sample timeout and by ctx. Snapshot therefore returns within the sample
// timeout even when a database is down, reporting it as unhealthy.
func (m *Metrics) Snapshot(ctx context.Context) Snapshot {
	snap := Snapshot{
		Time:       m.cfg.now(),
		Processors: m.ActiveProcessorsByKind(),
		Pools:      make(map[string]PoolSnapshot, len(m.pools)),
		Databases:  []DatabaseSnapshot{},
	}
	for _, n := range snap.Processors {
		snap.ActiveProcessors += n
	}
	for _, p := range m.pools {
		s, _ := p.stats()
		snap.Pools[p.name] = PoolSnapshot{Utilization: s.Utilization, Used: s.Used, Idle: s.Idle, Total: s.Total, Max: s.Max}
	}
	for _, db := range m.dbs {
		snap.Databases = append(snap.Databases, databaseSnapshot(ctx, db.s))
	}
	return snap
}

// databaseSnapshot is one sampler's state and, where it samples, its
// queues.
func databaseSnapshot(ctx context.Context, s *queuesampler.Sampler) DatabaseSnapshot {
	srv := s.Server()
	ds := DatabaseSnapshot{ServerAddress: srv.Address, ServerPort: srv.Port, Namespace: srv.Namespace,
		Role: queuesampler.RoleUnknown, Queues: map[string]QueueSnapshot{}}
	sample, err := s.Get(ctx)
	if sample == nil {
		// ctx ended while another sample was in progress: report the
		// previous one if any.
		sample = s.Last()
	}
	switch {
	case sample == nil:
		ds.Error = err.Error()
	case sample.Err != nil:
		ds.SampledAt, ds.Error = sample.At, sample.Err.Error()
	default:
		ds.Role, ds.Reason, ds.SampledAt, ds.Healthy = sample.Role, sample.Reason, sample.At, true
		if sample.Role == queuesampler.RoleSampler && !s.Current(sample) {
			// Taken in a term that has ended since: another replica may
			// be reporting now.
			ds.Role, ds.Reason = queuesampler.RoleStandby, "untrusted"
		}
		if ds.Role != queuesampler.RoleSampler {
			break
		}
		for _, q := range sample.Queues {
			ds.Queues[q.Name] = queueSnapshot(q)
		}
	}
	return ds
}

// queueSnapshot is q as the snapshot shows it.
func queueSnapshot(q queuedepth.Queue) QueueSnapshot {
	var qs QueueSnapshot
	if q.TotalSentKnown {
		qs.TotalSent = &q.TotalSent
	}
	if q.AgeKnown() {
		age := q.OldestAge.Seconds()
		qs.OldestAgeSeconds = &age
	}
	if !q.Known() {
		qs.Error = q.Err.Error()
		return qs
	}
	qs.Depth, qs.Visible, qs.Invisible = &q.Depth, &q.Visible, &q.Invisible
	qs.Estimated = q.Estimated()
	qs.VisibleMethod, qs.InvisibleMethod, qs.Source = string(q.VisibleMethod), string(q.InvisibleMethod), q.Source
	return qs
}
