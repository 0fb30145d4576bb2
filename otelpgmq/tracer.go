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

// spanKey names the start options of one kind of span on one queue.
type spanKey struct {
	queue string
	op    string
}

// startOptions returns the name ("<verb> <queue>") and the kind and
// attribute options of spans of k: the kept ones, or new ones, kept only
// once an operation on the queue has succeeded (keep). Most spans of a
// program repeat a few of them; calls to queues that do not exist, under
// names without end, leave nothing behind.
func (t *Tracer) startOptions(k spanKey, verb string, kind trace.SpanKind, opType attribute.KeyValue) *spanStart {
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
	return &spanStart{key: k, name: verb + " " + k.queue, opType: typ,
		opts:     []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(baseAttrs(k.queue, opType, k.op)...)},
		count:    t.inst.lookup(setKey{queue: k.queue, opName: k.op}),
		duration: t.inst.lookup(setKey{queue: k.queue, opName: k.op, opType: typ}),
		queue:    t.inst.lookup(setKey{queue: k.queue}),
	}
}

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
	kept.count = t.inst.keep(setKey{queue: k.queue, opName: k.op}, st.count)
	kept.duration = t.inst.keep(setKey{queue: k.queue, opName: k.op, opType: st.opType}, st.duration)
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
	span    trace.Span      // nil for receives, whose span is made at the end
	st      *spanStart      // the send's or settle's; nil for batches and receives
	creates []trace.Span    // a batch's create spans, in payload order
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

func baseAttrs(queue string, opType attribute.KeyValue, opName string) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKey.String(System),
		semconv.MessagingDestinationName(queue),
		opType,
		semconv.MessagingOperationName(opName),
	}
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

// TraceSendStart starts the "send <queue>" span and writes its context into
// the message's headers.
func (t *Tracer) TraceSendStart(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSendStartData) context.Context {
	start := t.now()
	st := t.startOptions(spanKey{data.Queue, string(pgmqclient.OperationSend)}, "send", trace.SpanKindProducer, semconv.MessagingOperationTypeSend)
	ctx, span := t.tracer.Start(ctx, st.name, st.opts...)
	t.propagator.Inject(ctx, data.Headers)
	return withState(ctx, &opState{queue: data.Queue, op: pgmqclient.OperationSend, start: start, span: span, st: st})
}

// TraceSendEnd ends the send span and records the send's metrics.
func (t *Tracer) TraceSendEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSendEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	t.finishSend(ctx, s, 1, t.now(), data.Err)
	if data.Err == nil && s.span.IsRecording() {
		s.span.SetAttributes(msgID(data.MsgID))
	}
	endSpan(s.span, data.Err)
}

// finishSend records sent.messages and operation.duration.
func (t *Tracer) finishSend(ctx context.Context, s *opState, n int, end time.Time, err error) {
	if err == nil && s.st != nil {
		st := t.keep(s.st)
		st.count.sent.Add(int64(n))
		t.inst.opDuration.Inst().Record(ctx, end.Sub(s.start).Seconds(), st.duration.rec...)
		return
	}
	et := errType(err)
	op := string(s.op)
	t.inst.attrs(setKey{queue: s.queue, opName: op, errType: et}).sent.Add(int64(n))
	t.inst.recordOperation(ctx, setKey{queue: s.queue, opName: op, opType: "send", errType: et}, end.Sub(s.start).Seconds())
}

// TraceSendBatchStart starts the "send <queue>" span of a batch and, unless
// turned off, a "create <queue>" span per message, whose context goes into
// that message's headers.
func (t *Tracer) TraceSendBatchStart(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSendBatchStartData) context.Context {
	start := t.now()
	attrs := append(baseAttrs(data.Queue, semconv.MessagingOperationTypeSend, string(pgmqclient.OperationSendBatch)),
		semconv.MessagingBatchMessageCount(data.Count))
	ctx, span := t.tracer.Start(ctx, "send "+data.Queue,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(start),
		trace.WithAttributes(attrs...))
	s := &opState{queue: data.Queue, op: pgmqclient.OperationSendBatch, start: start, span: span, qty: data.Count}
	if t.cfg.createSpans && span.IsRecording() {
		s.creates = make([]trace.Span, len(data.Headers))
		createAttrs := trace.WithAttributes(baseAttrs(data.Queue, semconv.MessagingOperationTypeCreate, "create")...)
		for i := range data.Headers {
			cctx, c := t.tracer.Start(ctx, "create "+data.Queue,
				trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(start), createAttrs)
			s.creates[i] = c
			t.propagator.Inject(cctx, &data.Headers[i])
		}
	} else {
		for i := range data.Headers {
			t.propagator.Inject(ctx, &data.Headers[i])
		}
	}
	return withState(ctx, s)
}

// TraceSendBatchEnd ends the batch's spans and records its metrics.
func (t *Tracer) TraceSendBatchEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSendBatchEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	end := t.now()
	t.finishSend(ctx, s, s.qty, end, data.Err)
	for i, c := range s.creates {
		if data.Err == nil && i < len(data.MsgIDs) {
			c.SetAttributes(msgID(data.MsgIDs[i]))
		}
		endSpan(c, data.Err, trace.WithTimestamp(end))
	}
	endSpan(s.span, data.Err, trace.WithTimestamp(end))
}

// TraceReceiveStart notes the start; the "receive <queue>" span is made at
// the end, once it is known whether any message came.
func (t *Tracer) TraceReceiveStart(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceReceiveStartData) context.Context {
	return withState(ctx, &opState{queue: data.Queue, op: data.Operation, start: t.now(), parent: ctx, qty: data.Qty,
		vt: data.VisibilityTimeout})
}

// TraceReceiveEnd makes the receive span, linked to each message's creation
// context, and records the receive's metrics, the messages' wait and their
// redeliveries.
func (t *Tracer) TraceReceiveEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceReceiveEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	end := t.now()
	op := string(s.op)
	st := t.startOptions(spanKey{s.queue, op}, "receive", trace.SpanKindClient, semconv.MessagingOperationTypeReceive)
	if data.Err == nil || len(data.Messages) > 0 {
		st = t.keep(st) // the queue exists
	}
	duration, count := st.duration, st.count
	if data.Err != nil {
		et := errType(data.Err)
		duration = t.inst.attrs(setKey{queue: s.queue, opName: op, opType: "receive", errType: et})
		count = t.inst.attrs(setKey{queue: s.queue, opName: op, errType: et})
	}
	t.inst.opDuration.Inst().Record(ctx, end.Sub(s.start).Seconds(), duration.rec...)
	if n := len(data.Messages); n > 0 {
		count.consumed.Add(int64(n))
		t.measureMessages(ctx, s, st.queue, data.Messages, end)
	}
	if len(data.Messages) == 0 && data.Err == nil && !t.cfg.emptyReceives {
		return
	}
	opts := make([]trace.SpanStartOption, 0, len(st.opts)+1+len(data.Messages))
	opts = append(append(opts, st.opts...), trace.WithTimestamp(s.start))
	var firstID attribute.KeyValue // the first message's id, made once for its link and the span
	if parent := trace.SpanContextFromContext(s.parent); parent.IsSampled() || !parent.IsValid() {
		// Links are given at the start; skip the work under an unsampled parent.
		for i, m := range data.Messages {
			if c := t.extract(m.Headers); c.span.IsValid() {
				id := msgID(m.ID)
				if i == 0 {
					firstID = id
				}
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: c.span, Attributes: []attribute.KeyValue{id}}))
			}
		}
	}
	_, span := t.tracer.Start(s.parent, st.name, opts...)
	if span.IsRecording() {
		if len(data.Messages) == 1 {
			m := data.Messages[0]
			if !firstID.Valid() {
				firstID = msgID(m.ID)
			}
			span.SetAttributes(firstID, attribute.Int(AttrReadCount, int(m.ReadCount)))
		} else if s.qty > 1 {
			span.SetAttributes(semconv.MessagingBatchMessageCount(len(data.Messages)))
		}
	}
	endSpan(span, data.Err, trace.WithTimestamp(end))
}

// measureMessages records pgmq.message.wait.duration for messages read for
// the first time and pgmq.message.redeliveries for the others.
//
// The read time comes from the server where it can: last_read_at (PGMQ
// 1.11 on), else vt minus the visibility timeout (read and read_with_poll
// set vt = clock_timestamp() + vt). Only pop, which sets neither, uses this
// process's clock. A negative wait (clocks apart) is left out and counted in
// pgmq.message.wait.skipped (reason clock_skew).
func (t *Tracer) measureMessages(ctx context.Context, s *opState, attrs *measureOpts, msgs []pgmqclient.Message, end time.Time) {
	// read and read_with_poll count the read they make; pop does not, so a
	// popped message that was read before has read_ct 1 already.
	firstRead := int32(1)
	if s.op == pgmqclient.OperationPop {
		firstRead = 0
	}
	var again int64
	for i := range msgs {
		m := &msgs[i]
		if m.ReadCount > firstRead {
			again++
			continue
		}
		read := end
		switch {
		case m.LastReadAt != nil:
			read = *m.LastReadAt
		case s.op != pgmqclient.OperationPop:
			read = m.VisibleAt.Add(-s.vt)
		}
		if w := read.Sub(m.EnqueuedAt); w >= 0 {
			t.inst.wait.Record(ctx, w.Seconds(), attrs.rec...)
		} else {
			// The read time came from this process's clock (Pop), which is
			// behind the server's: the wait is unknown, not negative.
			t.inst.waitSkipped.Add(ctx, 1, t.inst.skipAttrs(s.queue).add...)
		}
	}
	if again > 0 {
		attrs.redelivered.Add(again)
	}
}

// TraceSettleStart starts the "<operation> <queue>" settle span.
func (t *Tracer) TraceSettleStart(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSettleStartData) context.Context {
	start := t.now()
	st := t.startOptions(spanKey{data.Queue, string(data.Operation)}, string(data.Operation), trace.SpanKindClient, semconv.MessagingOperationTypeSettle)
	ctx, span := t.tracer.Start(ctx, st.name, st.opts...)
	if span.IsRecording() {
		if len(data.MsgIDs) == 1 {
			span.SetAttributes(msgID(data.MsgIDs[0]))
		} else {
			span.SetAttributes(semconv.MessagingBatchMessageCount(len(data.MsgIDs)))
		}
	}
	return withState(ctx, &opState{queue: data.Queue, op: data.Operation, start: start, span: span, st: st})
}

// TraceSettleEnd ends the settle span and records its duration.
func (t *Tracer) TraceSettleEnd(ctx context.Context, _ *pgmqclient.Client, data pgmqclient.TraceSettleEndData) {
	s := stateFrom(ctx)
	if s == nil {
		return
	}
	seconds := t.now().Sub(s.start).Seconds()
	if data.Err == nil {
		t.inst.opDuration.Inst().Record(ctx, seconds, t.keep(s.st).duration.rec...)
	} else {
		t.inst.recordOperation(ctx, setKey{queue: s.queue, opName: string(s.op), opType: "settle", errType: errType(data.Err)}, seconds)
	}
	endSpan(s.span, data.Err)
}
