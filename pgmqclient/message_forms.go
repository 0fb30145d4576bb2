package pgmqclient

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The newer forms of send and read: a delay given as a time, a message
// group, and a condition on the message. The options are applied by Send,
// SendBatch, Read and ReadWithPoll in message.go.

// GroupHeader is the header key PGMQ's grouped (FIFO) reads group messages
// by: messages with the same value are handed out in id order, one batch of
// a group at a time. Messages without it form one default group.
const GroupHeader = "x-pgmq-group"

// WithDelayUntil keeps the message invisible until t (pgmq.send with a
// timestamptz delay, PGMQ 1.5.0 on). Unlike WithDelay it is not rounded to
// whole seconds. A zero t is ignored; a t in the past makes the message
// visible at once. Together with a non-zero WithDelay it is refused with
// ErrInvalidArgument.
func WithDelayUntil(t time.Time) SendOption {
	return func(o *sendOptions) { o.until = t }
}

// WithGroup puts the message (with SendBatch, every message of the batch)
// in FIFO group g by setting the GroupHeader header, merged into the
// headers given by WithHeaders or WithBatchHeaders, which must then be JSON
// objects (or null). g must not be empty.
func WithGroup(g string) SendOption {
	return func(o *sendOptions) { o.group = &g }
}

// applyForms checks WithDelayUntil against WithDelay and merges the group
// into the headers. It runs after the headers were checked to be valid JSON.
func (o *sendOptions) applyForms() error {
	if !o.until.IsZero() && o.delay != 0 {
		return fmt.Errorf("%w: WithDelay and WithDelayUntil together", ErrInvalidArgument)
	}
	if o.group == nil {
		return nil
	}
	g := *o.group
	if g == "" {
		return fmt.Errorf("%w: empty message group", ErrInvalidArgument)
	}
	if o.perMessage {
		merged := make([]json.RawMessage, len(o.batchHeaders))
		for i, h := range o.batchHeaders {
			m, err := withHeader(h, GroupHeader, g)
			if err != nil {
				return fmt.Errorf("%w: headers %d: %w", ErrInvalidArgument, i, err)
			}
			merged[i] = m
		}
		o.batchHeaders = merged
		return nil
	}
	m, err := withHeader(o.headers, GroupHeader, g)
	if err != nil {
		return fmt.Errorf("%w: headers: %w", ErrInvalidArgument, err)
	}
	o.headers = m
	return nil
}

// withHeader returns the JSON object h (nil or null meaning {}) with key
// set to the string value.
func withHeader(h json.RawMessage, key, value string) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if h != nil {
		if err := json.Unmarshal(h, &fields); err != nil {
			return nil, fmt.Errorf("a message group needs headers that are a JSON object")
		}
		if fields == nil { // the JSON was null
			fields = map[string]json.RawMessage{}
		}
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	fields[key] = v
	return json.Marshal(fields)
}

// Group returns the message's FIFO group (its GroupHeader header), or ""
// when it has none.
func (m Message) Group() string {
	var h map[string]any
	if json.Unmarshal(m.Headers, &h) != nil {
		return ""
	}
	g, _ := h[GroupHeader].(string)
	return g
}

// delayParam returns the delay argument for send or send_batch and its SQL
// type: whole seconds as integer, or the WithDelayUntil time as timestamptz
// once the server is known to have that form.
func (c *Client) delayParam(ctx context.Context, op, queue string, o sendOptions, seconds int32) (any, string, error) {
	if o.until.IsZero() {
		return seconds, "integer", nil
	}
	if err := c.require(ctx, op, queue, FeatureSendAt); err != nil {
		return nil, "", err
	}
	return o.until, "timestamptz", nil
}

// ReadOption adjusts Read and ReadWithPoll.
type ReadOption func(*readOptions)

type readOptions struct {
	condition json.RawMessage
}

// WithCondition reads only messages whose payload contains cond (jsonb
// containment, message @> cond), PGMQ's "conditional" read. cond must be a
// JSON object; nil (or {}) reads every message.
func WithCondition(cond json.RawMessage) ReadOption {
	return func(o *readOptions) { o.condition = cond }
}

func readOpts(opts []ReadOption) (readOptions, error) {
	var o readOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.condition == nil {
		return o, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(o.condition, &fields); err != nil || fields == nil {
		return o, fmt.Errorf("%w: the condition must be a JSON object", ErrInvalidArgument)
	}
	if len(fields) == 0 {
		o.condition = nil // {} matches everything: the plain form does the same.
	}
	return o, nil
}

// visibleIn is how long after sending the message becomes visible: the
// delay in seconds, or the time until WithDelayUntil's moment (0 when that
// has passed). It is what tracing hooks report as the delay.
func (o sendOptions) visibleIn(seconds int32) time.Duration {
	if !o.until.IsZero() {
		return max(time.Until(o.until), 0)
	}
	return time.Duration(seconds) * time.Second
}
