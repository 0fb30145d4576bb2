package pgmqclient

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Message is one message as PGMQ returns it (its message_record type).
type Message struct {
	ID int64
	// ReadCount is how many times the message was read (read_ct).
	ReadCount  int32
	EnqueuedAt time.Time
	// VisibleAt is when the message becomes (or became) readable (vt).
	VisibleAt time.Time
	// LastReadAt is when the message was last read; nil if it never was,
	// and always nil on releases without the column (before about 1.11).
	LastReadAt *time.Time
	Payload    json.RawMessage
	// Headers is nil when the message was sent without headers.
	Headers json.RawMessage

	server *serverInfo // where it was read from, see Server
}

// SendOption adjusts Send and SendBatch.
type SendOption func(*sendOptions)

type sendOptions struct {
	headers      json.RawMessage
	batchHeaders []json.RawMessage
	perMessage   bool
	delay        time.Duration
	// until and group are set by WithDelayUntil and WithGroup (message_forms.go).
	until time.Time
	group *string
}

// WithHeaders attaches headers (a JSON value, usually an object) to the
// message; with SendBatch, to every message of the batch.
func WithHeaders(h json.RawMessage) SendOption {
	return func(o *sendOptions) { o.headers = h }
}

// WithBatchHeaders gives SendBatch one headers value per payload, in the
// same order; a nil element sends that message without headers. Its length
// must equal the number of payloads. Send refuses it.
func WithBatchHeaders(h []json.RawMessage) SendOption {
	return func(o *sendOptions) { o.batchHeaders, o.perMessage = h, true }
}

// WithDelay keeps the message invisible for d after it is sent. PGMQ takes
// whole seconds, so d is rounded UP (1ms becomes 1s): a message is never
// visible before the delay has passed. A negative d is refused with
// ErrInvalidArgument before any SQL is sent.
func WithDelay(d time.Duration) SendOption {
	return func(o *sendOptions) { o.delay = d }
}

// sendArgs applies opts and checks them. delay is in seconds.
func sendArgs(opts []SendOption) (o sendOptions, delay int32, err error) {
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if delay, err = seconds(o.delay, "delay"); err != nil {
		return o, 0, err
	}
	if o.headers != nil && o.perMessage {
		return o, 0, fmt.Errorf("%w: WithHeaders and WithBatchHeaders together", ErrInvalidArgument)
	}
	if o.headers != nil && !json.Valid(o.headers) {
		return o, 0, fmt.Errorf("%w: headers are not valid JSON", ErrInvalidArgument)
	}
	for i, h := range o.batchHeaders {
		if h != nil && !json.Valid(h) {
			return o, 0, fmt.Errorf("%w: headers %d are not valid JSON", ErrInvalidArgument, i)
		}
	}
	return o, delay, o.applyForms()
}

// Send enqueues one message (pgmq.send) and returns its id. The payload
// must be valid JSON. Options: WithHeaders, WithDelay or WithDelayUntil,
// WithGroup.
func (c *Client) Send(ctx context.Context, queue string, payload json.RawMessage, opts ...SendOption) (id int64, err error) {
	const op = "send"
	if err := ValidateQueueName(queue); err != nil {
		return 0, &OpError{Op: op, Queue: queue, Err: err}
	}
	o, delay, err := sendArgs(opts)
	if err == nil && o.perMessage {
		err = fmt.Errorf("%w: WithBatchHeaders is for SendBatch", ErrInvalidArgument)
	}
	if err == nil && !json.Valid(payload) {
		err = fmt.Errorf("%w: payload is not valid JSON", ErrInvalidArgument)
	}
	if err != nil {
		return 0, &OpError{Op: op, Queue: queue, Err: err}
	}
	delayArg, delayType, err := c.delayParam(ctx, op, queue, o, delay)
	if err != nil {
		return 0, err
	}
	if tr := c.hooks.send; tr != nil {
		added := new(HeaderCarrier)
		ctx = tr.TraceSendStart(ctx, c, TraceSendStartData{Queue: queue, Delay: o.visibleIn(delay), Headers: added,
			CallerHeaders: o.headers})
		var sent bool
		o.headers, sent, err = c.hookHeader(ctx, o.headers, added)
		defer func() {
			tr.TraceSendEnd(ctx, c, TraceSendEndData{MsgID: id, HeadersAdded: sent && err == nil, Err: err})
		}()
		if err != nil {
			return 0, opErr(c.db, op, queue, err)
		}
	}
	var row pgx.Row
	if o.headers == nil {
		row = c.db.QueryRow(ctx, `SELECT * FROM pgmq.send($1::text, $2::jsonb, $3::`+delayType+`)`, queue, payload, delayArg)
	} else {
		row = c.db.QueryRow(ctx, `SELECT * FROM pgmq.send($1::text, $2::jsonb, $3::jsonb, $4::`+delayType+`)`, queue, payload, o.headers, delayArg)
	}
	if err := row.Scan(&id); err != nil {
		return 0, opErr(c.db, op, queue, err)
	}
	return id, nil
}

// SendBatch enqueues several messages in one statement (pgmq.send_batch)
// and returns their ids in payload order. Headers: WithHeaders gives every
// message the same headers, WithBatchHeaders one per message. WithDelay
// (or WithDelayUntil) and WithGroup apply to the whole batch.
func (c *Client) SendBatch(ctx context.Context, queue string, payloads []json.RawMessage, opts ...SendOption) (ids []int64, err error) {
	const op = "send batch"
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	o, delay, err := sendArgs(opts)
	if err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if len(payloads) == 0 {
		return nil, invalidArg(op, queue, "no payloads")
	}
	for i, p := range payloads {
		if !json.Valid(p) {
			return nil, invalidArg(op, queue, "payload %d is not valid JSON", i)
		}
	}
	headers := o.batchHeaders
	switch {
	case o.perMessage && len(headers) != len(payloads):
		return nil, invalidArg(op, queue, "%d headers for %d payloads", len(headers), len(payloads))
	case o.headers != nil:
		headers = make([]json.RawMessage, len(payloads))
		for i := range headers {
			headers[i] = o.headers
		}
	}
	delayArg, delayType, err := c.delayParam(ctx, op, queue, o, delay)
	if err != nil {
		return nil, err
	}
	if tr := c.hooks.batch; tr != nil {
		added := make([]HeaderCarrier, len(payloads))
		ctx = tr.TraceSendBatchStart(ctx, c, TraceSendBatchStartData{Queue: queue, Count: len(payloads), Delay: o.visibleIn(delay),
			Headers: added, CallerHeaders: headers})
		var sent bool
		headers, sent, err = c.hookHeaders(ctx, headers, added)
		defer func() {
			tr.TraceSendBatchEnd(ctx, c, TraceSendBatchEndData{MsgIDs: ids, HeadersAdded: sent && err == nil, Err: err})
		}()
		if err != nil {
			return nil, opErr(c.db, op, queue, err)
		}
	}
	var rows pgx.Rows
	if headers == nil {
		rows, err = c.db.Query(ctx, `SELECT * FROM pgmq.send_batch($1::text, $2::jsonb[], $3::`+delayType+`)`, queue, payloads, delayArg)
	} else {
		rows, err = c.db.Query(ctx, `SELECT * FROM pgmq.send_batch($1::text, $2::jsonb[], $3::jsonb[], $4::`+delayType+`)`, queue, payloads, headers, delayArg)
	}
	ids, err = collectIDs(rows, err)
	if err != nil {
		return nil, opErr(c.db, op, queue, err)
	}
	return ids, nil
}

// Read takes up to qty visible messages (pgmq.read) and hides them for vt
// (rounded up to whole seconds; 0 leaves them visible). Messages locked by
// a concurrent reader are skipped, so two readers never get the same
// message. The result is ordered by id and empty when nothing is visible.
// Option: WithCondition.
func (c *Client) Read(ctx context.Context, queue string, vt time.Duration, qty int, opts ...ReadOption) ([]Message, error) {
	const op = "read"
	vts, err := readArgs(queue, vt, qty)
	var ro readOptions
	if err == nil {
		ro, err = readOpts(opts)
	}
	if err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if ro.condition != nil {
		if err := c.require(ctx, op, queue, FeatureReadConditional); err != nil {
			return nil, err
		}
	}
	data := TraceReceiveStartData{Queue: queue, Operation: OperationRead, Qty: qty, VisibilityTimeout: time.Duration(vts) * time.Second}
	return c.traceReceive(ctx, data, func(ctx context.Context) ([]Message, error) {
		if ro.condition != nil {
			rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.read($1::text, $2::integer, $3::integer, $4::jsonb)`, queue, vts, int32(qty), ro.condition)
			return c.messages(op, queue, rows, err)
		}
		rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.read($1::text, $2::integer, $3::integer)`, queue, vts, int32(qty))
		return c.messages(op, queue, rows, err)
	})
}

// ReadWithPoll is Read that waits (pgmq.read_with_poll): if nothing is
// visible it tries again every pollInterval (rounded up to milliseconds)
// until messages arrive or maxPoll (rounded up to seconds) has passed. The
// wait happens in the server and holds a connection; cancel ctx to end it
// early. maxPoll and pollInterval must be positive. Option: WithCondition.
func (c *Client) ReadWithPoll(ctx context.Context, queue string, vt time.Duration, qty int, maxPoll, pollInterval time.Duration, opts ...ReadOption) ([]Message, error) {
	const op = "read with poll"
	vts, err := readArgs(queue, vt, qty)
	var ro readOptions
	if err == nil {
		ro, err = readOpts(opts)
	}
	var maxS, intervalMS int32
	if err == nil {
		maxS, err = seconds(maxPoll, "max poll")
	}
	if err == nil {
		intervalMS, err = ceilUnits(pollInterval, time.Millisecond, "poll interval")
	}
	if err == nil && (maxS == 0 || intervalMS == 0) {
		err = fmt.Errorf("%w: max poll and poll interval must be positive, got %v and %v", ErrInvalidArgument, maxPoll, pollInterval)
	}
	if err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if ro.condition != nil {
		if err := c.require(ctx, op, queue, FeatureReadConditional); err != nil {
			return nil, err
		}
	}
	data := TraceReceiveStartData{Queue: queue, Operation: OperationReadWithPoll, Qty: qty, VisibilityTimeout: time.Duration(vts) * time.Second}
	return c.traceReceive(ctx, data, func(ctx context.Context) ([]Message, error) {
		if ro.condition != nil {
			rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.read_with_poll($1::text, $2::integer, $3::integer, $4::integer, $5::integer, $6::jsonb)`,
				queue, vts, int32(qty), maxS, intervalMS, ro.condition)
			return c.messages(op, queue, rows, err)
		}
		rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.read_with_poll($1::text, $2::integer, $3::integer, $4::integer, $5::integer)`,
			queue, vts, int32(qty), maxS, intervalMS)
		return c.messages(op, queue, rows, err)
	})
}

func readArgs(queue string, vt time.Duration, qty int) (int32, error) {
	if err := ValidateQueueName(queue); err != nil {
		return 0, err
	}
	if err := checkQty(qty); err != nil {
		return 0, err
	}
	return seconds(vt, "visibility timeout")
}

// Pop reads and deletes up to qty visible messages at once (pgmq.pop),
// ordered by id. Nothing is left to delete or archive: a popped message is
// gone even if the caller fails to process it.
//
// Newer PGMQ releases have pop(name, qty); older ones only pop(name), which
// takes one message. Which form the server has comes from the client's
// Capabilities (read once, cached; RefreshCapabilities after an upgrade).
// With the one-message form it calls pop once per message, up to qty times,
// stopping at the first empty result: no message goes to two callers, but
// the messages are not taken in one statement (inside a transaction they
// still commit together). If a later call fails, the messages already popped
// are returned together with the error.
func (c *Client) Pop(ctx context.Context, queue string, qty int) ([]Message, error) {
	const op = "pop"
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := checkQty(qty); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	return c.traceReceive(ctx, TraceReceiveStartData{Queue: queue, Operation: OperationPop, Qty: qty}, func(ctx context.Context) ([]Message, error) {
		return c.pop(ctx, queue, qty)
	})
}

// popWithQty is pop(name, qty), the form newer releases have.
var popWithQty = sig("pop", textArg, integerArg)

func (c *Client) pop(ctx context.Context, queue string, qty int) ([]Message, error) {
	const op = "pop"
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return nil, opErr(c.db, op, queue, err)
	}
	if caps.popQty {
		rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.pop($1::text, $2::integer)`, queue, int32(qty))
		return c.messages(op, queue, rows, err)
	}
	var out []Message
	for len(out) < qty {
		rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.pop($1::text)`, queue)
		got, err := c.messages(op, queue, rows, err)
		if err != nil {
			return out, err
		}
		if len(got) == 0 {
			break
		}
		out = append(out, got...)
	}
	return out, nil
}

// Delete deletes one message (pgmq.delete) and reports whether it existed.
func (c *Client) Delete(ctx context.Context, queue string, id int64) (bool, error) {
	return c.one(ctx, "delete", OperationDelete, `SELECT pgmq.delete($1::text, $2::bigint)`, queue, id)
}

// DeleteBatch deletes the messages with the given ids (pgmq.delete) and
// returns, ordered, the ids that existed. ids must not be empty.
func (c *Client) DeleteBatch(ctx context.Context, queue string, ids []int64) ([]int64, error) {
	return c.many(ctx, "delete batch", OperationDelete, `SELECT * FROM pgmq.delete($1::text, $2::bigint[])`, queue, ids)
}

// Archive moves one message to the queue's archive table, pgmq.a_<queue>
// (pgmq.archive), and reports whether it existed.
func (c *Client) Archive(ctx context.Context, queue string, id int64) (bool, error) {
	return c.one(ctx, "archive", OperationArchive, `SELECT pgmq.archive($1::text, $2::bigint)`, queue, id)
}

// ArchiveBatch archives the messages with the given ids (pgmq.archive) and
// returns, ordered, the ids that existed. ids must not be empty.
func (c *Client) ArchiveBatch(ctx context.Context, queue string, ids []int64) ([]int64, error) {
	return c.many(ctx, "archive batch", OperationArchive, `SELECT * FROM pgmq.archive($1::text, $2::bigint[])`, queue, ids)
}

func (c *Client) one(ctx context.Context, op string, top Operation, sql, queue string, id int64) (bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return false, &OpError{Op: op, Queue: queue, Err: err}
	}
	var ok bool
	err := c.traceSettle(ctx, TraceSettleStartData{Queue: queue, Operation: top, MsgIDs: []int64{id}}, func(ctx context.Context) (int, error) {
		if err := c.db.QueryRow(ctx, sql, queue, id).Scan(&ok); err != nil {
			return 0, opErr(c.db, op, queue, err)
		}
		if ok {
			return 1, nil
		}
		return 0, nil
	})
	return ok, err
}

func (c *Client) many(ctx context.Context, op string, top Operation, sql, queue string, ids []int64) ([]int64, error) {
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if len(ids) == 0 {
		return nil, invalidArg(op, queue, "no message ids")
	}
	var done []int64
	err := c.traceSettle(ctx, TraceSettleStartData{Queue: queue, Operation: top, MsgIDs: ids}, func(ctx context.Context) (int, error) {
		var err error
		if done, err = collectIDs(c.db.Query(ctx, sql, queue, ids)); err != nil {
			return 0, opErr(c.db, op, queue, err)
		}
		return len(done), nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// SetVisibilityTimeout makes the message visible vt from now (pgmq.set_vt;
// rounded up to whole seconds, 0 makes it visible at once) and returns it
// as updated. A message that is not in the queue gives an error wrapping
// ErrMessageNotFound.
func (c *Client) SetVisibilityTimeout(ctx context.Context, queue string, id int64, vt time.Duration) (Message, error) {
	const op = "set visibility timeout"
	if err := ValidateQueueName(queue); err != nil {
		return Message{}, &OpError{Op: op, Queue: queue, Err: err}
	}
	vts, err := seconds(vt, "visibility timeout")
	if err != nil {
		return Message{}, &OpError{Op: op, Queue: queue, Err: err}
	}
	var msg Message
	data := TraceSettleStartData{Queue: queue, Operation: OperationSetVT, MsgIDs: []int64{id}, VisibilityTimeout: time.Duration(vts) * time.Second}
	err = c.traceSettle(ctx, data, func(ctx context.Context) (int, error) {
		rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.set_vt($1::text, $2::bigint, $3::integer)`, queue, id, vts)
		msgs, err := c.messages(op, queue, rows, err)
		if err != nil {
			return 0, err
		}
		if len(msgs) == 0 {
			return 0, &OpError{Op: op, Queue: queue, Err: fmt.Errorf("%w: id %d", ErrMessageNotFound, id)}
		}
		msg = msgs[0]
		return 1, nil
	})
	return msg, err
}

// messages scans message_record rows by column name, ordered by id, and
// wraps any error for op and queue. qerr is the error from Query.
func (c *Client) messages(op, queue string, rows pgx.Rows, qerr error) ([]Message, error) {
	if qerr != nil {
		return nil, opErr(c.db, op, queue, qerr)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, opErr(c.db, op, queue, err)
	}
	c.stamp(msgs)
	return msgs, nil
}

func scanMessages(rows pgx.Rows) ([]Message, error) {
	out, err := scanMessagesInOrder(rows)
	slices.SortFunc(out, func(a, b Message) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}

// scanMessagesInOrder scans message_record rows by column name, keeping
// the server's order.
func scanMessagesInOrder(rows pgx.Rows) ([]Message, error) {
	var out []Message
	var payload, headers []byte
	err := scanByName(rows, func(column string, m *Message) any {
		switch column {
		case "msg_id":
			return &m.ID
		case "read_ct":
			return &m.ReadCount
		case "enqueued_at":
			return &m.EnqueuedAt
		case "last_read_at":
			return &m.LastReadAt
		case "vt":
			return &m.VisibleAt
		case "message":
			return &payload
		case "headers":
			return &headers
		}
		return nil
	}, func(m Message) {
		// Scan made fresh copies of the JSON, so they may be kept.
		m.Payload, m.Headers = payload, headers
		payload, headers = nil, nil
		out = append(out, m)
	}, "msg_id", "vt", "message")
	if err != nil {
		return nil, err
	}
	return out, nil
}

// collectIDs reads a single bigint column (a setof bigint result), sorted.
func collectIDs(rows pgx.Rows, qerr error) ([]int64, error) {
	if qerr != nil {
		return nil, qerr
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}
