package queuedepth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Queue is one queue's figures as a sample saw them.
type Queue struct {
	// Name is the queue's name as PGMQ stores it in pgmq.meta (as given in
	// Options.Queues for a queue that does not exist).
	Name string
	// Err, when not nil, says why this queue's figures are missing: the
	// queue does not exist (pgmqclient.ErrQueueNotFound), its table could
	// not be read (a *pgconn.PgError, for example lock_not_available), or
	// its depth could not be known within the sampler's bounds (ErrUnknown;
	// the age and the sent count are still filled in). Depth, Visible and
	// Invisible are then zero and must not be reported: Known says so.
	Err error
	// Depth is the number of messages in the queue.
	Depth int64
	// Visible messages can be read now; Invisible ones are in flight
	// (read, visibility timeout running) or delayed. Visible+Invisible ==
	// Depth.
	Visible, Invisible int64
	// VisibleMethod and InvisibleMethod say how each figure was obtained:
	// MethodCount when exact, MethodEstimate otherwise. Method is Depth's:
	// MethodCount only when both are.
	VisibleMethod, InvisibleMethod, Method Method
	// Source says what an estimate rests on: SourceCount (no estimate),
	// SourceLiveTuples, SourcePlanner or SourceIDSample.
	Source string
	// OldestAge is the age of the message with the smallest id; 0 when
	// empty.
	OldestAge time.Duration
	// TotalSent is the number of messages ever sent (the id sequence's
	// last value), when TotalSentKnown. It is left out on a standby, where
	// the sequence reads up to 32 ahead, and for unlogged queues, whose
	// sequence starts again with the table after a crash or a promotion;
	// after a crash restart it may be up to 32 above the messages actually
	// sent (values PostgreSQL logged ahead), never below, and it never
	// goes backwards.
	TotalSent      int64
	TotalSentKnown bool
	// SampledAt is the server's clock when the sample began.
	SampledAt time.Time
}

// Known reports whether the depth figures are known: Err is nil.
func (q Queue) Known() bool { return q.Err == nil }

// AgeKnown reports whether OldestAge was read: the queue's table was read
// even if its depth could not be known.
func (q Queue) AgeKnown() bool { return q.Err == nil || errors.Is(q.Err, ErrUnknown) }

// Estimated reports that Depth is an estimate (Method is MethodEstimate),
// because the queue holds more than the exact-count threshold.
func (q Queue) Estimated() bool { return q.Known() && q.Method == MethodEstimate }

// QueueError is the error of one queue's figures.
type QueueError struct {
	Queue string
	Err   error
}

// Error reads `queuedepth: queue "<name>": <cause>`.
func (e *QueueError) Error() string {
	return fmt.Sprintf("queuedepth: queue %q: %s", e.Queue, strings.TrimPrefix(e.Err.Error(), "queuedepth: "))
}

// Unwrap returns the cause.
func (e *QueueError) Unwrap() error { return e.Err }

// Method says how a depth figure was obtained.
type Method string

// Depth methods.
const (
	// MethodCount: the figure is exact, a count of the rows (capped counts
	// at or below the threshold, or a lookup of every id in the span).
	MethodCount Method = "count"
	// MethodEstimate: the figure is an estimate, the queue (or this state)
	// holding more than the exact-count threshold. Queue.Source says
	// what it rests on.
	MethodEstimate Method = "estimate"
)

// Estimate sources, in Queue.Source.
const (
	// SourceCount: no estimate was needed.
	SourceCount = "count"
	// SourceLiveTuples: the statistics' live rows (n_live_tup), used only
	// when a VACUUM or ANALYZE has re-based them since the statistics were
	// last lost (crash, pg_stat_reset, promotion) and not on a standby.
	SourceLiveTuples = "live_tuples"
	// SourcePlanner: the planner's method, reltuples / relpages of the last
	// VACUUM or ANALYZE times the table's current size in pages (summed
	// over the partitions of a partitioned queue).
	SourcePlanner = "planner"
	// SourceIDSample: a stratified sample of message ids looked up by
	// primary key; the density of existing ids times the id span.
	SourceIDSample = "id_sample"
)

// Reasons a depth is left out (UnknownError.Reason).
const (
	// ReasonNoEstimate: no source gave an estimate consistent with what
	// the counts prove (for example statistics lost and the id sample too
	// sparse).
	ReasonNoEstimate = "no_estimate"
	// ReasonSplitUncertain: both states are above the threshold and the id
	// sample cannot tell their split within 1 % of the depth.
	ReasonSplitUncertain = "split_uncertain"
)

// ErrUnloggedOnStandby is the error of an unlogged queue (pgmqclient.CreateUnloggedQueue)
// sampled on a standby: its rows exist on the primary only, so nothing
// about it, depth or age, can be read there.
var ErrUnloggedOnStandby = errors.New("queuedepth: an unlogged queue's messages cannot be read on a standby")

// ErrUnknown is matched (errors.Is) by every *UnknownError.
var ErrUnknown = errors.New("queuedepth: depth unknown")

// UnknownError reports that a queue's depth could not be known within
// the sampler's bounds: its depth points are left out rather than made up.
type UnknownError struct {
	// Reason is one of the Reason constants.
	Reason string
}

// Error says why.
func (e *UnknownError) Error() string {
	return fmt.Sprintf("queuedepth: depth unknown: %s", e.Reason)
}

// Is makes errors.Is(err, ErrUnknown) true.
func (e *UnknownError) Is(target error) bool { return target == ErrUnknown }
