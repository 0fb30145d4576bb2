package otelmetrics

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Values of pgmq.depth.method.
const (
	DepthMethodCount    = string(pgmqclient.MethodCount)
	DepthMethodEstimate = string(pgmqclient.MethodEstimate)
)

// depthAttrs are the attribute sets of one queue's depth in one state, one
// per pgmq.depth.method.
type depthAttrs struct {
	count, estimate metric.MeasurementOption
}

func newDepthAttrs(kvs ...attribute.KeyValue) depthAttrs {
	with := func(m string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(kvs[:len(kvs):len(kvs)], attribute.String(AttrDepthMethod, m))...))
	}
	return depthAttrs{count: with(DepthMethodCount), estimate: with(DepthMethodEstimate)}
}

func (a depthAttrs) of(m pgmqclient.DepthMethod) metric.MeasurementOption {
	if m == pgmqclient.MethodCount {
		return a.count
	}
	return a.estimate
}

// queueInstruments are the per-queue instruments the callback observes.
type queueInstruments struct {
	depth metric.Int64ObservableGauge
	age   metric.Float64ObservableGauge
	sent  metric.Int64ObservableCounter
}

// observeQueues reports a sample's queues. A queue that could not be
// sampled reports nothing, except that a queue whose depth alone is unknown
// still reports its age and sent messages, which were read; sent messages
// are left out where they are not known to be true (on a standby).
func observeQueues(o metric.Observer, in queueInstruments, sample *queueSample) {
	for i, d := range sample.depths {
		a := sample.attrs[i]
		if d.Err != nil && !errors.Is(d.Err, pgmqclient.ErrDepthUnknown) {
			continue
		}
		if d.Err == nil {
			o.ObserveInt64(in.depth, d.Visible, a.visible.of(d.VisibleMethod))
			o.ObserveInt64(in.depth, d.Invisible, a.invisible.of(d.InvisibleMethod))
		}
		o.ObserveFloat64(in.age, d.OldestAge.Seconds(), a.queue)
		if d.TotalSentKnown {
			o.ObserveInt64(in.sent, d.TotalSent, a.queue)
		}
	}
}

// queueErrorType is the error.type of a queue that could not be sampled,
// or "" for a named queue that does not exist, which is reported through
// otel.Handle and the snapshot but not counted (it is configuration, not
// a sampling failure).
func queueErrorType(err error) string {
	var unknown *pgmqclient.DepthUnknownError
	switch {
	case errors.Is(err, pgmqclient.ErrQueueNotFound):
		return ""
	case errors.As(err, &unknown):
		return unknown.Reason
	case errors.Is(err, pgmqclient.ErrUnloggedOnStandby):
		return "unlogged_on_standby"
	}
	return errorType(err)
}

// queueReports remembers which per-queue errors were handed to
// otel.Handle, so each distinct one is reported once, not at every
// collection. A queue that samples again without error is forgotten, so a
// later failure is reported again.
type queueReports map[string]string

// queueFailures counts the per-queue failures of a successful sample in
// pgmq.sampler.errors and reports each new one through otel.Handle; it
// also checks the cardinality. Called with sem held.
func (s *queueSampler) queueFailures(depths []pgmqclient.QueueDepth) {
	if s.queueReports == nil {
		s.queueReports = queueReports{}
	}
	seen := make(map[string]bool, len(depths))
	for _, d := range depths {
		seen[d.Queue] = true
		if d.Err == nil {
			delete(s.queueReports, d.Queue)
			continue
		}
		if typ := queueErrorType(d.Err); typ != "" {
			s.failures.count(typ)
		}
		if msg := d.Err.Error(); s.queueReports[d.Queue] != msg {
			s.queueReports[d.Queue] = msg
			otel.Handle(fmt.Errorf("otelmetrics: queue sampler: %w", d.Err))
		}
	}
	for q := range s.queueReports {
		if !seen[q] {
			delete(s.queueReports, q)
		}
	}
	s.cardinality.check(len(depths))
}

// validateQueuePatterns checks the include and exclude patterns and the
// exact-count threshold before any SQL, with the rules pgmqclient applies.
func validateQueuePatterns(cfg config) error {
	if _, err := pgmqclient.NewDepthSampler(nil, pgmqclient.DepthOptions{
		Include: cfg.includeQueues, Exclude: cfg.excludeQueues, ExactCountThreshold: cfg.exactThreshold}); err != nil {
		return fmt.Errorf("otelmetrics: queue sampling: %w", err)
	}
	return nil
}
