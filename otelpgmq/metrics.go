package otelpgmq

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// ScopeName is the instrumentation scope of this package's spans and
// instruments.
const ScopeName = "github.com/pgmqotel/pgmqotel/otelpgmq"

// Version is the version of this instrumentation, reported as the scope version.
const Version = "0.1.0"

// System is the value of messaging.system.
const System = "pgmq"

// Instrument names. README.md lists them with units and attributes; a test
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
type instruments struct {
	sent         messagingconv.ClientSentMessages
	consumed     messagingconv.ClientConsumedMessages
	opDuration   messagingconv.ClientOperationDuration
	procDuration messagingconv.ProcessDuration
	wait         metric.Float64Histogram
	redeliveries metric.Int64Counter
	waitSkipped  metric.Int64Counter

	sets sync.Map // setKey -> *measureOpts
}

func newInstruments(mp metric.MeterProvider) *instruments {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version),
		metric.WithSchemaURL(semconv.SchemaURL))
	in := &instruments{}
	var err error
	if in.sent, err = messagingconv.NewClientSentMessages(meter); err != nil {
		otel.Handle(err)
	}
	if in.consumed, err = messagingconv.NewClientConsumedMessages(meter); err != nil {
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
	if in.redeliveries, err = meter.Int64Counter(MetricRedeliveries,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages received again after an earlier read (read_ct > 1).")); err != nil {
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
// attributes. errType is empty on success.
type setKey struct {
	queue, opName, opType, errType string
}

// measureOpts are one attribute set as the option lists the instruments'
// Add and Record take. Passing a kept list, rather than one option per
// call, spares the variadic slice each measurement would allocate.
type measureOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newMeasureOpts(set attribute.Set) *measureOpts {
	o := metric.WithAttributeSet(set)
	return &measureOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

// attrs returns the measurement options for k, building them once.
func (in *instruments) attrs(k setKey) *measureOpts {
	if o, ok := in.sets.Load(k); ok {
		return o.(*measureOpts)
	}
	kv := make([]attribute.KeyValue, 0, 5)
	kv = append(kv, semconv.MessagingSystemKey.String(System), semconv.MessagingDestinationName(k.queue))
	if k.opName != "" {
		kv = append(kv, semconv.MessagingOperationName(k.opName))
	}
	if k.opType != "" {
		kv = append(kv, semconv.MessagingOperationTypeKey.String(k.opType))
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	o := newMeasureOpts(attribute.NewSet(kv...))
	// Error types are few, but bound the cache anyway: a caller could make
	// up queue names without end.
	if k.errType == "" {
		in.sets.Store(k, o)
	}
	return o
}

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
