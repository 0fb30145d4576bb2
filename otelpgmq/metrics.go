package otelpgmq

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// ScopeName is the instrumentation scope of this package's spans and
// instruments.
const ScopeName = "github.com/pgmqotel/pgmqotel/otelpgmq"

// Version is the version of this instrumentation, reported as the scope version.
const Version = "0.1.0"

// System is the value of messaging.system.
const System = "pgmq"

// Instrument names. docs/metrics.md lists them with units and attributes; a test
// keeps the two in step.
const (
	MetricSentMessages      = "messaging.client.sent.messages"
	MetricConsumedMessages  = "messaging.client.consumed.messages"
	MetricOperationDuration = "messaging.client.operation.duration"
	MetricProcessDuration   = "messaging.process.duration"
	MetricWaitDuration      = "pgmq.message.wait.duration"
	MetricRedeliveries      = "pgmq.message.redeliveries"
	MetricWaitSkipped       = "pgmq.message.wait.skipped"
)

// DurationBuckets are the explicit bucket boundaries, in seconds, the
// messaging conventions give messaging.client.operation.duration and
// messaging.process.duration. They are set as the instruments' advice; a
// View overrides them.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// WaitBuckets are the bucket boundaries, in seconds, of
// pgmq.message.wait.duration: queue waits run from milliseconds to an hour.
// A View overrides them.
var WaitBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// instruments are the registered instruments and the attribute sets built
// for them.
//
// The three message counters (sent, consumed, redeliveries) are
// asynchronous: a send or receive adds to an atomic counter kept with its
// attribute set, and one callback reports them all at collection. The
// exported points are the same as a synchronous Counter's (a monotonic,
// cumulative Sum, or deltas under a delta temporality), without the SDK's
// per-measurement work on the caller's path, which cost about 1 % of a
// Send (BENCHMARKS.md, bar 6). Counters carry no exemplars either way
// worth having; the duration histograms stay synchronous and keep theirs.
type instruments struct {
	sent         metric.Int64ObservableCounter
	consumed     metric.Int64ObservableCounter
	redeliveries metric.Int64ObservableCounter
	opDuration   messagingconv.ClientOperationDuration
	procDuration messagingconv.ProcessDuration
	wait         metric.Float64Histogram
	waitSkipped  metric.Int64Counter

	sets    sync.Map     // setKey -> *measureOpts
	errSets atomic.Int32 // error sets stored in sets, bounded by maxErrorSets
}

// maxErrorSets bounds the attribute sets kept for failures, a set per
// queue, operation and error type: calls to queues that do not exist fail
// under names without end. Past it, a failure with a new set is counted in
// an overflow set per operation, {messaging.system,
// messaging.operation.name (and .type), server.address and .port,
// otel.metric.overflow=true}, as the SDK does past its cardinality limit:
// counted, not dropped, and still found by queries on the operation.
const maxErrorSets = 1000

func newInstruments(mp metric.MeterProvider) *instruments {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version),
		metric.WithSchemaURL(semconv.SchemaURL))
	in := &instruments{}
	var err error
	var sent messagingconv.ClientSentMessages
	var consumed messagingconv.ClientConsumedMessages
	if in.sent, err = meter.Int64ObservableCounter(sent.Name(),
		metric.WithUnit(sent.Unit()), metric.WithDescription(sent.Description())); err != nil {
		otel.Handle(err)
	}
	if in.consumed, err = meter.Int64ObservableCounter(consumed.Name(),
		metric.WithUnit(consumed.Unit()), metric.WithDescription(consumed.Description())); err != nil {
		otel.Handle(err)
	}
	if in.opDuration, err = messagingconv.NewClientOperationDuration(meter,
		metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		otel.Handle(err)
	}
	if in.procDuration, err = messagingconv.NewProcessDuration(meter,
		metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		otel.Handle(err)
	}
	if in.wait, err = meter.Float64Histogram(MetricWaitDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Time from a message's enqueued_at to its first read, send delay included."),
		metric.WithExplicitBucketBoundaries(WaitBuckets...)); err != nil {
		otel.Handle(err)
	}
	if in.redeliveries, err = meter.Int64ObservableCounter(MetricRedeliveries,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages received again after an earlier read (read_ct > 1; > 0 for pop, which does not count its read).")); err != nil {
		otel.Handle(err)
	}
	if _, err := meter.RegisterCallback(in.observe, in.sent, in.consumed, in.redeliveries); err != nil {
		otel.Handle(err)
	}
	if in.waitSkipped, err = meter.Int64Counter(MetricWaitSkipped,
		metric.WithUnit("{message}"),
		metric.WithDescription("First reads whose wait was left out of pgmq.message.wait.duration, by reason.")); err != nil {
		otel.Handle(err)
	}
	return in
}

// setKey identifies one attribute set of the low-cardinality metric
// attributes. errType is empty on success; server is zero when unknown.
type setKey struct {
	queue, opName, opType, errType string
	server                         pgmqclient.ServerAddress
	overflow                       bool // an operation's set past maxErrorSets (no queue, no error type)
}

// measureOpts are one attribute set as the option lists the instruments'
// Add, Record and Observe take, and the message counts kept under it.
// Passing a kept list, rather than one option per call, spares the
// variadic slice each measurement would allocate.
type measureOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption

	// Counts of the asynchronous counters. A set belongs to one of them
	// (its operation name tells which), except the overflow set, which
	// may count for all three.
	sent, consumed, redelivered atomic.Int64
}

func newMeasureOpts(set attribute.Set) *measureOpts {
	o := metric.WithAttributeSet(set)
	return &measureOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// observe reports the message counters: every attribute set that has
// counted something.
func (in *instruments) observe(_ context.Context, o metric.Observer) error {
	in.sets.Range(func(_, v any) bool {
		m := v.(*measureOpts)
		if n := m.sent.Load(); n > 0 {
			o.ObserveInt64(in.sent, n, m.obs...)
		}
		if n := m.consumed.Load(); n > 0 {
			o.ObserveInt64(in.consumed, n, m.obs...)
		}
		if n := m.redelivered.Load(); n > 0 {
			o.ObserveInt64(in.redeliveries, n, m.obs...)
		}
		return true
	})
	return nil
}

// lookup returns the kept measurement options of k, or new ones that are
// not kept (see Tracer.keep).
func (in *instruments) lookup(k setKey) *measureOpts {
	if o, ok := in.sets.Load(k); ok {
		return o.(*measureOpts)
	}
	return newMeasureOpts(in.attributeSet(k))
}

// keep stores o as k's options unless some are stored already, and
// returns the stored ones.
func (in *instruments) keep(k setKey, o *measureOpts) *measureOpts {
	actual, _ := in.sets.LoadOrStore(k, o)
	return actual.(*measureOpts)
}

// attrs returns the measurement options for k, building and keeping them
// once: success sets of queues that exist (send_batch), and sets with an
// error type (the counters live in them), up to maxErrorSets; past that a
// new one is the overflow set.
func (in *instruments) attrs(k setKey) *measureOpts {
	if o, ok := in.sets.Load(k); ok {
		return o.(*measureOpts)
	}
	if k.overflow {
		o, _ := in.sets.LoadOrStore(k, newMeasureOpts(in.overflowSet(k)))
		return o.(*measureOpts)
	}
	if k.errType != "" && in.errSets.Load() >= maxErrorSets {
		return in.attrs(setKey{overflow: true, opName: k.opName, opType: k.opType, server: k.server})
	}
	o := newMeasureOpts(in.attributeSet(k))
	actual, loaded := in.sets.LoadOrStore(k, o)
	if !loaded && k.errType != "" {
		in.errSets.Add(1)
	}
	return actual.(*measureOpts)
}

// attributeSet is k's attribute set.
func (in *instruments) attributeSet(k setKey) attribute.Set {
	kv := make([]attribute.KeyValue, 0, 7)
	kv = append(kv, semconv.MessagingSystemKey.String(System), semconv.MessagingDestinationName(k.queue))
	kv = appendOperation(kv, k)
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	return attribute.NewSet(kv...)
}

// overflowSet is the attribute set of k, an overflow key: the operation
// and server, without the queue and error type that made too many sets.
func (in *instruments) overflowSet(k setKey) attribute.Set {
	kv := make([]attribute.KeyValue, 0, 6)
	kv = append(kv, semconv.MessagingSystemKey.String(System))
	kv = appendOperation(kv, k)
	return attribute.NewSet(append(kv, attribute.Bool(attrOverflow, true))...)
}

// appendOperation appends the operation name and type of k, and its
// server, when set.
func appendOperation(kv []attribute.KeyValue, k setKey) []attribute.KeyValue {
	if k.opName != "" {
		kv = append(kv, semconv.MessagingOperationName(k.opName))
	}
	if k.opType != "" {
		kv = append(kv, semconv.MessagingOperationTypeKey.String(k.opType))
	}
	return appendServer(kv, k.server)
}

// attrOverflow marks the overflow set, as the SDK marks its own.
const attrOverflow = "otel.metric.overflow"

func (in *instruments) recordOperation(ctx context.Context, k setKey, seconds float64) {
	in.opDuration.Inst().Record(ctx, seconds, in.attrs(k).rec...)
}

// AttrSkipReason says why a wait was left out of pgmq.message.wait.duration.
const AttrSkipReason = "pgmq.skip.reason"

// skipAttrs returns the attributes of pgmq.message.wait.skipped for queue:
// the only reason so far is clock_skew.
func (in *instruments) skipAttrs(queue string) *measureOpts {
	return newMeasureOpts(attribute.NewSet(
		semconv.MessagingSystemKey.String(System),
		semconv.MessagingDestinationName(queue),
		attribute.String(AttrSkipReason, "clock_skew"),
	))
}
