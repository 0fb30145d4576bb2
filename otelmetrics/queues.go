package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Values of pgmq.depth.method.
const (
	DepthMethodCount    = string(queuedepth.MethodCount)
	DepthMethodEstimate = string(queuedepth.MethodEstimate)
)

// queueInstruments are the instruments of the sampled queues.
type queueInstruments struct {
	depth  metric.Int64ObservableGauge
	age    metric.Float64ObservableGauge
	sent   metric.Int64ObservableCounter
	errors metric.Int64ObservableCounter
}

func newQueueInstruments(meter metric.Meter) (queueInstruments, error) {
	depth, err1 := meter.Int64ObservableGauge(MetricQueueDepth,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the queue, by state: visible (readable now) or invisible (in flight or delayed)."))
	age, err2 := meter.Float64ObservableGauge(MetricQueueOldestAge,
		metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest message in the queue; 0 when the queue is empty."))
	sent, err3 := meter.Int64ObservableCounter(MetricQueueSent,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages ever sent to the queue."))
	fails, err4 := meter.Int64ObservableCounter(MetricSamplerErrors,
		metric.WithUnit("{error}"),
		metric.WithDescription("Queue samples, or single queues of a sample, that failed, by error type; their points were left out."))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return queueInstruments{}, fmt.Errorf("otelmetrics: create queue instruments: %w", err)
	}
	return queueInstruments{depth: depth, age: age, sent: sent, errors: fails}, nil
}

// sampledDB is one database's sampler with the attribute sets of its
// points, computed once per queue (and per error type).
type sampledDB struct {
	s      *queuesampler.Sampler
	server []attribute.KeyValue // server.address, server.port, db.namespace

	mu        sync.Mutex
	sample    *queuesampler.Sample // the sample attrs belong to
	attrs     []*queueAttrs        // parallel to sample.Queues
	byName    map[string]*queueAttrs
	errorSets map[string]metric.MeasurementOption
}

func newSampledDB(s *queuesampler.Sampler) *sampledDB {
	srv := s.Server()
	return &sampledDB{s: s, server: []attribute.KeyValue{
		semconv.ServerAddress(srv.Address), semconv.ServerPort(srv.Port), semconv.DBNamespace(srv.Namespace)},
		byName: map[string]*queueAttrs{}, errorSets: map[string]metric.MeasurementOption{}}
}

// queueAttrs are one queue's attribute sets. The depth's sets also say
// how each value was obtained.
type queueAttrs struct {
	queue     metric.MeasurementOption
	visible   depthAttrs
	invisible depthAttrs
}

func (db *sampledDB) newQueueAttrs(name string) *queueAttrs {
	kvs := append([]attribute.KeyValue{semconv.MessagingSystemKey.String(messagingSystem),
		semconv.MessagingDestinationName(name)}, db.server...)
	return &queueAttrs{
		queue:     metric.WithAttributeSet(attribute.NewSet(kvs...)),
		visible:   newDepthAttrs(append(kvs, attribute.String(AttrMessageState, "visible"))...),
		invisible: newDepthAttrs(append(kvs, attribute.String(AttrMessageState, "invisible"))...),
	}
}

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

func (a depthAttrs) of(m queuedepth.Method) metric.MeasurementOption {
	if m == queuedepth.MethodCount {
		return a.count
	}
	return a.estimate
}

// attrsFor returns the attribute sets of sample's queues, reusing those of
// queues seen before and forgetting queues that are gone. Called with mu
// held.
func (db *sampledDB) attrsFor(sample *queuesampler.Sample) []*queueAttrs {
	if sample == db.sample {
		return db.attrs
	}
	out := make([]*queueAttrs, len(sample.Queues))
	seen := make(map[string]*queueAttrs, len(sample.Queues))
	for i, q := range sample.Queues {
		a := db.byName[q.Name]
		if a == nil {
			a = db.newQueueAttrs(q.Name)
		}
		out[i], seen[q.Name] = a, a
	}
	db.sample, db.attrs, db.byName = sample, out, seen
	return out
}

// errorSet is the attribute set of error type typ. Called with mu held.
func (db *sampledDB) errorSet(typ string) metric.MeasurementOption {
	set, ok := db.errorSets[typ]
	if !ok {
		set = metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{attribute.String(AttrErrorType, typ)}, db.server...)...))
		db.errorSets[typ] = set
	}
	return set
}

// observe reports db's failures and, when the sample is this replica's
// to report, its queues. A queue that could not be sampled reports
// nothing, except that a queue whose depth alone is unknown still reports
// its age and sent messages, which were read; sent messages are left out
// where they are not known to be true (on a standby, for unlogged queues).
func (db *sampledDB) observe(o metric.Observer, in queueInstruments, sample *queuesampler.Sample) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, f := range db.s.Failures() {
		o.ObserveInt64(in.errors, f.Count, db.errorSet(f.Type))
	}
	// No sample (the collection was cancelled), a failed one, a standby's
	// or one from a term that has ended: report nothing rather than a
	// made-up or second value.
	if !db.s.Reportable(sample) {
		return 0
	}
	attrs := db.attrsFor(sample)
	for i, q := range sample.Queues {
		a := attrs[i]
		if q.Known() {
			o.ObserveInt64(in.depth, q.Visible, a.visible.of(q.VisibleMethod))
			o.ObserveInt64(in.depth, q.Invisible, a.invisible.of(q.InvisibleMethod))
		}
		if q.AgeKnown() {
			o.ObserveFloat64(in.age, q.OldestAge.Seconds(), a.queue)
		}
		if q.TotalSentKnown {
			o.ObserveInt64(in.sent, q.TotalSent, a.queue)
		}
	}
	return len(sample.Queues)
}

// registerQueues registers one callback for the queue instruments of
// every sampled database. The databases are sampled concurrently, so one
// that is down or slow costs only its own points.
func (m *Metrics) registerQueues(meter metric.Meter) (metric.Registration, error) {
	in, err := newQueueInstruments(meter)
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		samples := m.getSamples(ctx)
		queues := 0
		for i, db := range m.dbs {
			queues += db.observe(o, in, samples[i])
		}
		m.cardinality.check(queues)
		return nil
	}, in.depth, in.age, in.sent, in.errors)
}

// getSamples gets a sample of every database, concurrently when there are
// several; a sample is nil where ctx ended first.
func (m *Metrics) getSamples(ctx context.Context) []*queuesampler.Sample {
	out := make([]*queuesampler.Sample, len(m.dbs))
	if len(m.dbs) == 1 {
		out[0], _ = m.dbs[0].s.Get(ctx)
		return out
	}
	var wg sync.WaitGroup
	for i, db := range m.dbs {
		wg.Go(func() { out[i], _ = db.s.Get(ctx) })
	}
	wg.Wait()
	return out
}
