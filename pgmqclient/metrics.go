package pgmqclient

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// QueueMetrics holds PGMQ's figures for one queue (its metrics_result).
// Computing them scans the whole queue table; see SampleDepths for a
// sampler whose cost does not grow with the backlog.
type QueueMetrics struct {
	Queue string
	// Length is the number of messages in the queue.
	Length int64
	// VisibleLength is the number of messages readable now (0 on releases
	// that do not report it).
	VisibleLength int64
	// NewestAge and OldestAge are the ages of the newest and oldest
	// message, in whole seconds as PGMQ reports them; 0 when empty.
	NewestAge, OldestAge time.Duration
	// TotalMessages is the number of messages ever sent to the queue.
	TotalMessages int64
	// ScrapeTime is the server's clock when the figures were taken.
	ScrapeTime time.Time
}

// Metrics returns PGMQ's figures for one queue (pgmq.metrics). A missing
// queue gives an error wrapping ErrQueueNotFound.
func (c *Client) Metrics(ctx context.Context, queue string) (QueueMetrics, error) {
	const op = "metrics"
	if err := ValidateQueueName(queue); err != nil {
		return QueueMetrics{}, &OpError{Op: op, Queue: queue, Err: err}
	}
	ms, err := c.metrics(ctx, `SELECT * FROM pgmq.metrics($1::text)`, queue)
	if err != nil {
		return QueueMetrics{}, opErr(c.db, op, queue, err)
	}
	if len(ms) != 1 {
		return QueueMetrics{}, &OpError{Op: op, Queue: queue, Err: fmt.Errorf("pgmq.metrics returned %d rows", len(ms))}
	}
	return ms[0], nil
}

// MetricsAll returns PGMQ's figures for every queue (pgmq.metrics_all),
// ordered by queue name.
func (c *Client) MetricsAll(ctx context.Context) ([]QueueMetrics, error) {
	const op = "metrics all"
	ms, err := c.metrics(ctx, `SELECT * FROM pgmq.metrics_all()`)
	if err != nil {
		return nil, opErr(c.db, op, "", err)
	}
	slices.SortFunc(ms, func(a, b QueueMetrics) int { return cmp.Compare(a.Queue, b.Queue) })
	return ms, nil
}

func (c *Client) metrics(ctx context.Context, sql string, args ...any) ([]QueueMetrics, error) {
	rows, err := c.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []QueueMetrics
	// Nullable in the result type; the ages are NULL for an empty queue.
	var length, visible, newest, oldest, total *int64
	err = scanByName(rows, func(column string, m *QueueMetrics) any {
		switch column {
		case "queue_name":
			return &m.Queue
		case "queue_length":
			return &length
		case "queue_visible_length":
			return &visible
		case "newest_msg_age_sec":
			return &newest
		case "oldest_msg_age_sec":
			return &oldest
		case "total_messages":
			return &total
		case "scrape_time":
			return &m.ScrapeTime
		}
		return nil
	}, func(m QueueMetrics) {
		m.Length, m.VisibleLength, m.TotalMessages = deref(length), deref(visible), deref(total)
		m.NewestAge = time.Duration(deref(newest)) * time.Second
		m.OldestAge = time.Duration(deref(oldest)) * time.Second
		length, visible, newest, oldest, total = nil, nil, nil, nil, nil
		out = append(out, m)
	}, "queue_name", "queue_length")
	return out, err
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// QueueSize returns the exact number of messages in the queue, counted
// with count(*) on its table (a full scan: cost grows with the backlog).
// The server names the table (PGMQ's lower('q_' || name) under the
// database's ctype) before it is counted: two statements. A missing queue
// gives an *OpError wrapping ErrQueueNotFound, a database without PGMQ
// one wrapping ErrPGMQNotInstalled; an unreachable database gives an *OpError wrapping the connection error.
// The size is 0 whenever err is not nil.
func (c *Client) QueueSize(ctx context.Context, queue string) (int64, error) {
	const op = "queue size"
	if err := ValidateQueueName(queue); err != nil {
		return 0, &OpError{Op: op, Queue: queue, Err: err}
	}
	table, err := queueTable(ctx, c.db, queue)
	if err != nil {
		return 0, opErr(c.db, op, queue, err)
	}
	var n int64
	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, opErr(c.db, op, queue, err)
	}
	return n, nil
}
