package otelpgmq

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Attribute keys beyond the messaging conventions.
const (
	// AttrReadCount is the message's read_ct, on receive and process spans.
	AttrReadCount = "messaging.pgmq.message.read_count"
)

// Tracer implements pgmqclient's tracing hooks with OpenTelemetry spans and
// messaging metrics, and runs the processing of a message (Process). Build
// it once with NewTracer; it is safe for concurrent use.
type Tracer struct {
	cfg        config
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	inst       *instruments
	now        func() time.Time
	starts     sync.Map // spanKey -> *spanStart, built once per queue and operation
	// recent holds, per operation, the kept start options last looked up:
	// a program that sends to one queue finds them without hashing the key.
	recent [len(operations)]atomic.Pointer[spanStart]
}

// operations index Tracer.recent.
var operations = [...]pgmqclient.Operation{
	pgmqclient.OperationSend, pgmqclient.OperationSendBatch, pgmqclient.OperationRead,
	pgmqclient.OperationReadWithPoll, pgmqclient.OperationPop, pgmqclient.OperationDelete,
	pgmqclient.OperationArchive, pgmqclient.OperationSetVT,
}

// recentFor returns the Tracer.recent slot of op, nil for an operation
// without one.
func (t *Tracer) recentFor(op string) *atomic.Pointer[spanStart] {
	for i := range operations {
		if string(operations[i]) == op {
			return &t.recent[i]
		}
	}
	return nil
}

// spanStart is the name and the kind and attribute options of one kind of
// span on one queue, and the metric attribute sets of its operation when it
// succeeds (an error's sets are looked up by its type).
type spanStart struct {
	key  spanKey
	kept bool // stored in Tracer.starts, its sets in instruments.sets
	name string
	opts []trace.SpanStartOption

	count    *measureOpts // sent or consumed messages: queue and operation name
	duration *measureOpts // operation duration: queue, operation name and type
	queue    *measureOpts // per-message metrics: queue only
	opType   string
}

// spanKey names the start options of one kind of span on one queue of one
// server (zero when unknown).
type spanKey struct {
	queue  string
	op     string
	server pgmqclient.ServerAddress
}

// startOptions returns the name ("<operation name> <queue>", as the
// conventions give it) and the kind and attribute options of spans of k:
// the kept ones, or new ones, kept only once an operation on the queue has
// succeeded (keep). Most spans of a program repeat a few of them; calls to
// queues that do not exist, under names without end, leave nothing behind.
func (t *Tracer) startOptions(k spanKey, kind trace.SpanKind, opType attribute.KeyValue) *spanStart {
	recent := t.recentFor(k.op)
	if recent != nil {
		if st := recent.Load(); st != nil && st.key == k {
			return st
		}
	}
	if o, ok := t.starts.Load(k); ok {
		st := o.(*spanStart)
		if recent != nil {
			recent.Store(st)
		}
		return st
	}
	typ := opType.Value.AsString()
	return &spanStart{key: k, name: spanName(k.op, k.queue), opType: typ,
		opts:     []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(baseAttrs(k.queue, opType, k.op, k.server)...)},
		count:    t.inst.lookup(setKey{queue: k.queue, opName: k.op, server: k.server}),
		duration: t.inst.lookup(setKey{queue: k.queue, opName: k.op, opType: typ, server: k.server}),
		queue:    t.inst.lookup(setKey{queue: k.queue}),
	}
}

// spanName is the conventions' span name: "{messaging.operation.name}
// {messaging.destination.name}".
func spanName(op, queue string) string { return op + " " + queue }

// keep stores st and its attribute sets, once the queue is known to exist,
// and returns the stored one (another call may have stored it first). Only
// kept sets count messages: the counters' callback reports those.
func (t *Tracer) keep(st *spanStart) *spanStart {
	if st.kept {
		return st
	}
	k := st.key
	kept := *st
	kept.kept = true
	kept.count = t.inst.keep(setKey{queue: k.queue, opName: k.op, server: k.server}, st.count)
	kept.duration = t.inst.keep(setKey{queue: k.queue, opName: k.op, opType: st.opType, server: k.server}, st.duration)
	kept.queue = t.inst.keep(setKey{queue: k.queue}, st.queue)
	actual, _ := t.starts.LoadOrStore(k, &kept)
	return actual.(*spanStart)
}

// The hooks Tracer implements.
var (
	_ pgmqclient.SendTracer      = (*Tracer)(nil)
	_ pgmqclient.SendBatchTracer = (*Tracer)(nil)
	_ pgmqclient.ReceiveTracer   = (*Tracer)(nil)
	_ pgmqclient.SettleTracer    = (*Tracer)(nil)

	// Propagators inject into the client's header carrier directly.
	_ propagation.TextMapCarrier = (*pgmqclient.HeaderCarrier)(nil)
)

// NewTracer returns a Tracer on the configured (default: global) tracer
// and meter providers and propagator. It performs no I/O; instrument
// registration errors go to otel.Handle.
func NewTracer(opts ...Option) *Tracer {
	cfg := newConfig(opts)
	tp := cfg.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	prop := cfg.propagator
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	return &Tracer{
		cfg: cfg,
		tracer: tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version),
			trace.WithSchemaURL(semconv.SchemaURL)),
		propagator: prop,
		inst:       newInstruments(cfg.meterProvider),
		now:        time.Now,
	}
}

// opState travels from a Start hook to its End hook as the context the
// Start hook returns: it is its own context value (one allocation, not two).
type opState struct {
	context.Context
	queue   string
	op      pgmqclient.Operation
	start   time.Time
	server  pgmqclient.ServerAddress
	span    trace.Span      // nil for receives, whose span is made at the end
	st      *spanStart      // the send's or settle's; nil for batches and receives
	creates []trace.Span    // a batch's create spans, in payload order (nil entries for messages with a context of their own)
	parent  context.Context // a receive's caller context
	qty     int
	vt      time.Duration
}

type stateKey struct{}

// withState returns s as a context on ctx holding s.
func withState(ctx context.Context, s *opState) context.Context {
	s.Context = ctx
	return s
}

// Value returns s itself for stateKey and the wrapped context's values
// otherwise.
func (s *opState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return s
	}
	return s.Context.Value(key)
}

func stateFrom(ctx context.Context) *opState {
	if s, ok := ctx.(*opState); ok {
		return s
	}
	s, _ := ctx.Value(stateKey{}).(*opState)
	return s
}

// baseAttrs are the attributes every span of an operation on queue carries:
// those the conventions require or require when available, given at the
// start so that samplers see them.
func baseAttrs(queue string, opType attribute.KeyValue, opName string, srv pgmqclient.ServerAddress) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 6)
	kv = append(kv,
		semconv.MessagingSystemKey.String(System),
		semconv.MessagingDestinationName(queue),
		opType,
		semconv.MessagingOperationName(opName),
	)
	return appendServer(kv, srv)
}

// appendServer appends server.address and server.port of srv, when known.
func appendServer(kv []attribute.KeyValue, srv pgmqclient.ServerAddress) []attribute.KeyValue {
	if srv.Host == "" {
		return kv
	}
	return append(kv, semconv.ServerAddress(srv.Host), semconv.ServerPort(int(srv.Port)))
}

// serverOf is the address of c's server, zero when it is not known (or c is
// nil).
func serverOf(c *pgmqclient.Client) pgmqclient.ServerAddress {
	if c == nil {
		return pgmqclient.ServerAddress{}
	}
	if srv, ok := c.Server(); ok {
		return srv
	}
	return pgmqclient.ServerAddress{}
}

func msgID(id int64) attribute.KeyValue {
	return semconv.MessagingMessageID(strconv.FormatInt(id, 10))
}

// endSpan records err on span, if any, and ends it.
func endSpan(span trace.Span, err error, opts ...trace.SpanEndOption) {
	if err != nil {
		span.SetAttributes(semconv.ErrorType(err))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(opts...)
}

// errType returns the error.type value of err, "" for nil.
func errType(err error) string {
	if err == nil {
		return ""
	}
	return semconv.ErrorType(err).Value.AsString()
}
