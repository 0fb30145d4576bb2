package pgmqclient

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// FIFO message groups (PGMQ 1.9.0 on for the reads, 1.7.1 on for the
// indexes). Messages that carry the same GroupHeader value form a group;
// a grouped read hands out a group's messages in id order and never a
// message while an earlier one of its group is still invisible (read and
// not yet deleted or archived), so each group is processed in order even
// with many consumers. Messages without the header form one default group.
// Send with WithGroup to set the header.

// ReadGrouped takes up to qty visible messages, filling the batch from the
// group with the oldest waiting message first, then the next group
// (pgmq.read_grouped), and hides them for vt (rounded up to whole seconds).
// Messages are returned in the order PGMQ hands them out.
func (c *Client) ReadGrouped(ctx context.Context, queue string, vt time.Duration, qty int) ([]Message, error) {
	return c.readGrouped(ctx, "read grouped", "read_grouped", FeatureReadGrouped, queue, vt, qty)
}

// ReadGroupedRR is ReadGrouped taking round-robin across groups
// (pgmq.read_grouped_rr): the first message of every available group, then
// the second, and so on, so one busy group cannot starve the others.
func (c *Client) ReadGroupedRR(ctx context.Context, queue string, vt time.Duration, qty int) ([]Message, error) {
	return c.readGrouped(ctx, "read grouped rr", "read_grouped_rr", FeatureReadGroupedRR, queue, vt, qty)
}

// ReadGroupedWithPoll is ReadGrouped that waits like ReadWithPoll
// (pgmq.read_grouped_with_poll).
func (c *Client) ReadGroupedWithPoll(ctx context.Context, queue string, vt time.Duration, qty int, maxPoll, pollInterval time.Duration) ([]Message, error) {
	return c.readGroupedPoll(ctx, "read grouped with poll", "read_grouped_with_poll", FeatureReadGrouped, queue, vt, qty, maxPoll, pollInterval)
}

// ReadGroupedRRWithPoll is ReadGroupedRR that waits like ReadWithPoll
// (pgmq.read_grouped_rr_with_poll).
func (c *Client) ReadGroupedRRWithPoll(ctx context.Context, queue string, vt time.Duration, qty int, maxPoll, pollInterval time.Duration) ([]Message, error) {
	return c.readGroupedPoll(ctx, "read grouped rr with poll", "read_grouped_rr_with_poll", FeatureReadGroupedRR, queue, vt, qty, maxPoll, pollInterval)
}

func (c *Client) readGrouped(ctx context.Context, op, fn string, f Feature, queue string, vt time.Duration, qty int) ([]Message, error) {
	vts, err := readArgs(queue, vt, qty)
	if err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, f); err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.`+fn+`($1::text, $2::integer, $3::integer)`, queue, vts, int32(qty))
	return c.messagesInOrder(op, queue, rows, err)
}

func (c *Client) readGroupedPoll(ctx context.Context, op, fn string, f Feature, queue string, vt time.Duration, qty int, maxPoll, pollInterval time.Duration) ([]Message, error) {
	vts, err := readArgs(queue, vt, qty)
	var maxS, intervalMS int32
	if err == nil {
		maxS, intervalMS, err = pollArgs(maxPoll, pollInterval)
	}
	if err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, f); err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.`+fn+`($1::text, $2::integer, $3::integer, $4::integer, $5::integer)`,
		queue, vts, int32(qty), maxS, intervalMS)
	return c.messagesInOrder(op, queue, rows, err)
}

// pollArgs converts a poll limit to whole seconds and a poll interval to
// milliseconds, both rounded up and required to be positive.
func pollArgs(maxPoll, pollInterval time.Duration) (maxS, intervalMS int32, err error) {
	if maxS, err = seconds(maxPoll, "max poll"); err != nil {
		return 0, 0, err
	}
	if intervalMS, err = ceilUnits(pollInterval, time.Millisecond, "poll interval"); err != nil {
		return 0, 0, err
	}
	if maxS == 0 || intervalMS == 0 {
		return 0, 0, fmt.Errorf("%w: max poll and poll interval must be positive, got %v and %v", ErrInvalidArgument, maxPoll, pollInterval)
	}
	return maxS, intervalMS, nil
}

// messagesInOrder is messages keeping the server's order.
func (c *Client) messagesInOrder(op, queue string, rows pgx.Rows, qerr error) ([]Message, error) {
	if qerr != nil {
		return nil, opErr(c.db, op, queue, qerr)
	}
	msgs, err := scanMessagesInOrder(rows)
	if err != nil {
		return nil, opErr(c.db, op, queue, err)
	}
	c.stamp(msgs)
	return msgs, nil
}

// CreateFIFOIndex adds PGMQ's index for grouped reads to the queue's table
// (pgmq.create_fifo_index, PGMQ 1.7.1 on). Creating it twice is not an error.
func (c *Client) CreateFIFOIndex(ctx context.Context, queue string) error {
	const op = "create fifo index"
	if err := ValidateQueueName(queue); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, FeatureFIFOIndex); err != nil {
		return err
	}
	if _, err := c.db.Exec(ctx, `SELECT pgmq.create_fifo_index($1::text)`, queue); err != nil {
		return opErr(c.db, op, queue, err)
	}
	return nil
}

// CreateFIFOIndexesAll adds the index for grouped reads to every queue
// (pgmq.create_fifo_indexes_all, PGMQ 1.7.1 on).
func (c *Client) CreateFIFOIndexesAll(ctx context.Context) error {
	const op = "create fifo indexes all"
	if err := c.require(ctx, op, "", FeatureFIFOIndex); err != nil {
		return err
	}
	if _, err := c.db.Exec(ctx, `SELECT pgmq.create_fifo_indexes_all()`); err != nil {
		return opErr(c.db, op, "", err)
	}
	return nil
}
