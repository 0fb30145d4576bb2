package pgmqclient

import (
	"context"
	"fmt"
	"time"
)

// The newer forms of pgmq.set_vt: several ids in one call, and a visibility
// time given as a timestamp. SetVisibilityTimeout (message.go) is the
// one-message form with a timeout in seconds, which every release has.

// SetVisibilityTimeoutBatch makes the messages with the given ids visible
// vt from now (pgmq.set_vt over an array of ids, PGMQ 1.10.0 on; rounded up
// to whole seconds) and returns, ordered by id, those that were in the queue.
// ids must not be empty.
func (c *Client) SetVisibilityTimeoutBatch(ctx context.Context, queue string, ids []int64, vt time.Duration) ([]Message, error) {
	const op = "set visibility timeout batch"
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if len(ids) == 0 {
		return nil, invalidArg(op, queue, "no message ids")
	}
	vts, err := seconds(vt, "visibility timeout")
	if err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, FeatureSetVTBatch); err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.set_vt($1::text, $2::bigint[], $3::integer)`, queue, ids, vts)
	return c.messages(op, queue, rows, err)
}

// SetVisibleAt makes the message visible at t (pgmq.set_vt with a
// timestamptz, PGMQ 1.10.0 on; t is not rounded; a t in the past makes it
// visible at once) and returns it as updated. A message that is not in the
// queue gives an error wrapping ErrMessageNotFound. A zero t is refused.
func (c *Client) SetVisibleAt(ctx context.Context, queue string, id int64, t time.Time) (Message, error) {
	const op = "set visible at"
	if err := ValidateQueueName(queue); err != nil {
		return Message{}, &OpError{Op: op, Queue: queue, Err: err}
	}
	if t.IsZero() {
		return Message{}, invalidArg(op, queue, "zero time")
	}
	if err := c.require(ctx, op, queue, FeatureSetVTAt); err != nil {
		return Message{}, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.set_vt($1::text, $2::bigint, $3::timestamptz)`, queue, id, t)
	msgs, err := c.messages(op, queue, rows, err)
	if err != nil {
		return Message{}, err
	}
	if len(msgs) == 0 {
		return Message{}, &OpError{Op: op, Queue: queue, Err: fmt.Errorf("%w: id %d", ErrMessageNotFound, id)}
	}
	return msgs[0], nil
}

// SetVisibleAtBatch makes the messages with the given ids visible at t
// (pgmq.set_vt over an array of ids with a timestamptz, PGMQ 1.10.0 on) and
// returns, ordered by id, those that were in the queue. ids must not be
// empty; a zero t is refused.
func (c *Client) SetVisibleAtBatch(ctx context.Context, queue string, ids []int64, t time.Time) ([]Message, error) {
	const op = "set visible at batch"
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if len(ids) == 0 {
		return nil, invalidArg(op, queue, "no message ids")
	}
	if t.IsZero() {
		return nil, invalidArg(op, queue, "zero time")
	}
	if err := c.require(ctx, op, queue, FeatureSetVTBatchAt); err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.set_vt($1::text, $2::bigint[], $3::timestamptz)`, queue, ids, t)
	return c.messages(op, queue, rows, err)
}
