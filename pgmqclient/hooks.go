package pgmqclient

import (
	"context"
	"encoding/json"
	"time"
)

// This file defines the client's tracing hooks. They have no telemetry
// dependency: package otelpgmq implements them with OpenTelemetry, and a
// program that wants only the client pulls in nothing more than pgx.
//
// The shape follows pgx's QueryTracer: Start gets the call's context and
// returns the one End gets (a hook keeps its span or start time there); the
// data travels in structs that may gain fields. Arguments the client refuses
// before any SQL (a bad queue name, a negative duration, ...) are not traced.

// Operation names a PGMQ function a hook is called for. The values are the
// SQL function names, suitable as messaging.operation.name.
type Operation string

// Operations passed to hooks.
const (
	OperationSend         Operation = "send"
	OperationSendBatch    Operation = "send_batch"
	OperationRead         Operation = "read"
	OperationReadWithPoll Operation = "read_with_poll"
	OperationPop          Operation = "pop"
	OperationDelete       Operation = "delete"
	OperationArchive      Operation = "archive"
	OperationSetVT        Operation = "set_vt"
)

// SendTracer traces Send. It is the tracer's required interface; a tracer
// may also implement SendBatchTracer, ReceiveTracer and SettleTracer, which
// WithTracer detects once.
type SendTracer interface {
	// TraceSendStart is called before the message is sent. It may add keys
	// to data.Headers; the client merges them into the message's headers.
	TraceSendStart(ctx context.Context, c *Client, data TraceSendStartData) context.Context
	// TraceSendEnd is called with the context TraceSendStart returned.
	TraceSendEnd(ctx context.Context, c *Client, data TraceSendEndData)
}

// SendBatchTracer traces SendBatch.
type SendBatchTracer interface {
	// TraceSendBatchStart is called before the batch is sent. It may add
	// keys to each map of data.Headers, one per payload.
	TraceSendBatchStart(ctx context.Context, c *Client, data TraceSendBatchStartData) context.Context
	// TraceSendBatchEnd is called with the context TraceSendBatchStart returned.
	TraceSendBatchEnd(ctx context.Context, c *Client, data TraceSendBatchEndData)
}

// ReceiveTracer traces Read, ReadWithPoll and Pop.
type ReceiveTracer interface {
	// TraceReceiveStart is called before the messages are asked for.
	TraceReceiveStart(ctx context.Context, c *Client, data TraceReceiveStartData) context.Context
	// TraceReceiveEnd is called with the context TraceReceiveStart
	// returned and the messages received, none included.
	TraceReceiveEnd(ctx context.Context, c *Client, data TraceReceiveEndData)
}

// SettleTracer traces Delete, DeleteBatch, Archive, ArchiveBatch and
// SetVisibilityTimeout.
type SettleTracer interface {
	// TraceSettleStart is called before the messages are settled.
	TraceSettleStart(ctx context.Context, c *Client, data TraceSettleStartData) context.Context
	// TraceSettleEnd is called with the context TraceSettleStart returned.
	TraceSettleEnd(ctx context.Context, c *Client, data TraceSettleEndData)
}

// TraceSendStartData describes a Send about to run.
type TraceSendStartData struct {
	Queue string
	// Delay is the delay as sent: whole seconds, or, with WithDelayUntil,
	// the time until that moment.
	Delay time.Duration
	// Headers starts empty; a propagator injects into it directly. Keys
	// the hook adds become top-level string keys of the message's headers
	// object, in the order set, merged with the caller's headers, all or
	// none: when the caller set one of them, none is added (the caller
	// propagates a context of its own); keys starting with "x-pgmq-"
	// (PGMQ's own, such as x-pgmq-group) are never written, and headers
	// that are not a JSON object are left as they are. On PGMQ releases
	// without headers (before 1.5) nothing is added and the send goes ahead.
	Headers *HeaderCarrier
	// CallerHeaders are the headers the caller gave (WithHeaders, and
	// WithGroup's key), nil for none; a hook reads them and never changes
	// them. When they already hold a key the hook adds, the caller
	// propagates a creation context of its own and none of the hook's keys
	// is written.
	CallerHeaders json.RawMessage
}

// TraceSendEndData describes how a Send ended.
type TraceSendEndData struct {
	// MsgID is the new message's id; 0 when Err is set.
	MsgID int64
	// HeadersAdded reports whether the hook's headers went into the message.
	HeadersAdded bool
	Err          error
}

// TraceSendBatchStartData describes a SendBatch about to run.
type TraceSendBatchStartData struct {
	Queue string
	// Count is the number of messages.
	Count int
	// Delay is the delay as sent: whole seconds.
	Delay time.Duration
	// Headers holds one empty carrier per message, in payload order (use
	// &Headers[i]), merged like TraceSendStartData.Headers.
	Headers []HeaderCarrier
	// CallerHeaders are the caller's headers of each message, in payload
	// order (an element is nil for a message without any); nil when the
	// caller gave none. Read-only, as TraceSendStartData.CallerHeaders.
	CallerHeaders []json.RawMessage
}

// TraceSendBatchEndData describes how a SendBatch ended.
type TraceSendBatchEndData struct {
	// MsgIDs are the new messages' ids in payload order; nil when Err is set.
	MsgIDs []int64
	// HeadersAdded reports whether the hook's headers went into the messages.
	HeadersAdded bool
	Err          error
}

// TraceReceiveStartData describes a Read, ReadWithPoll or Pop about to run.
type TraceReceiveStartData struct {
	Queue     string
	Operation Operation
	// Qty is the most messages asked for.
	Qty int
	// VisibilityTimeout is the visibility timeout as sent (whole seconds);
	// 0 for Pop.
	VisibilityTimeout time.Duration
}

// TraceReceiveEndData describes how a receive ended.
type TraceReceiveEndData struct {
	// Messages are the messages received, possibly none. Pop may return
	// messages together with an error.
	Messages []Message
	Err      error
}

// TraceSettleStartData describes a Delete, Archive or SetVisibilityTimeout
// (single or batch) about to run.
type TraceSettleStartData struct {
	Queue     string
	Operation Operation
	// MsgIDs are the ids passed, one for the single-message calls.
	MsgIDs []int64
	// VisibilityTimeout is the new visibility timeout of set_vt (whole
	// seconds); 0 otherwise.
	VisibilityTimeout time.Duration
}

// TraceSettleEndData describes how a settle ended.
type TraceSettleEndData struct {
	// Settled is the number of messages that existed and were settled.
	Settled int
	Err     error
}

// Option configures a Client built by New.
type Option func(*Client)

// WithTracer makes the client call t around its operations. t always traces
// sends; if it also implements SendBatchTracer, ReceiveTracer or
// SettleTracer, those calls are traced too (detected here, once). A nil t is
// ignored.
func WithTracer(t SendTracer) Option {
	return func(c *Client) {
		if t == nil {
			return
		}
		c.hooks.send = t
		c.hooks.batch, _ = t.(SendBatchTracer)
		c.hooks.receive, _ = t.(ReceiveTracer)
		c.hooks.settle, _ = t.(SettleTracer)
	}
}

// hooks are the tracer's interfaces, each nil when not implemented.
type hooks struct {
	send    SendTracer
	batch   SendBatchTracer
	receive ReceiveTracer
	settle  SettleTracer
}

// traceReceive calls the receive hooks around run, when there are any.
func (c *Client) traceReceive(ctx context.Context, data TraceReceiveStartData, run func(context.Context) ([]Message, error)) ([]Message, error) {
	tr := c.hooks.receive
	if tr == nil {
		return run(ctx)
	}
	ctx = tr.TraceReceiveStart(ctx, c, data)
	msgs, err := run(ctx)
	tr.TraceReceiveEnd(ctx, c, TraceReceiveEndData{Messages: msgs, Err: err})
	return msgs, err
}

// traceSettle calls the settle hooks around run, when there are any. run
// returns how many messages were settled.
func (c *Client) traceSettle(ctx context.Context, data TraceSettleStartData, run func(context.Context) (int, error)) error {
	tr := c.hooks.settle
	if tr == nil {
		_, err := run(ctx)
		return err
	}
	ctx = tr.TraceSettleStart(ctx, c, data)
	n, err := run(ctx)
	tr.TraceSettleEnd(ctx, c, TraceSettleEndData{Settled: n, Err: err})
	return err
}
