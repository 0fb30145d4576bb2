package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultExactCountThreshold is the depth up to which SampleDepths counts
// messages exactly. Above it the depth comes from PostgreSQL's statistics,
// so the cost of a sample does not grow with the backlog.
const DefaultExactCountThreshold = 50_000

// DepthOptions selects the queues SampleDepths reports and how it counts.
type DepthOptions struct {
	// Queues limits the sample to these queues. Empty means every queue in
	// pgmq.meta, discovered by the same statement.
	Queues []string
	// ExactCountThreshold is the largest depth counted exactly; zero means
	// DefaultExactCountThreshold.
	ExactCountThreshold int64
}

// QueueDepth is one queue's depth as SampleDepths saw it.
type QueueDepth struct {
	Queue string
	// Depth is the number of messages in the queue.
	Depth int64
	// Visible messages can be read now; Invisible ones are in flight
	// (read, visibility timeout running) or delayed. Visible+Invisible == Depth.
	Visible, Invisible int64
	// OldestAge is the age of the message with the smallest id; 0 when empty.
	OldestAge time.Duration
	// TotalSent is the number of messages ever sent (the id sequence's last value).
	TotalSent int64
	// Estimated reports that Depth (and so Visible) come from the table
	// statistics (pg_stat_user_tables.n_live_tup) rather than a count,
	// because the queue holds more than the exact-count threshold.
	Estimated bool
	// SampledAt is the server's clock when the sample was taken.
	SampledAt time.Time
}

// sampleDepthsSQL samples every selected queue in one statement and one
// round trip. The queue tables are only known at run time, so each per-queue
// query is built on the server with format('%I') (identifiers always quoted)
// and run through query_to_xml; queue names never reach SQL as text.
//
// Cost per queue: a count capped at threshold+1 rows (skipped when the
// statistics already say the queue is larger), a capped count of invisible
// rows through the vt index, one primary-key probe for the oldest message
// and one sequence read. Nothing scans more than threshold+1 rows.
const sampleDepthsSQL = `
WITH q AS (
	SELECT m.queue_name AS name, 'q_' || lower(m.queue_name) AS rel
	FROM pgmq.meta AS m
	WHERE cardinality($1::text[]) = 0 OR lower(m.queue_name) = ANY ($1::text[])
), e AS (
	SELECT q.name, q.rel, coalesce(s.n_live_tup, 0) AS est
	FROM q LEFT JOIN pg_catalog.pg_stat_user_tables AS s
		ON s.schemaname = 'pgmq' AND s.relname = q.rel
), x AS (
	SELECT e.name, e.est,
		query_to_xml(format(
			'SELECT (SELECT count(*) FROM (SELECT 1 FROM pgmq.%1$I LIMIT %2$s) AS t) AS n, '
			'(SELECT count(*) FROM (SELECT 1 FROM pgmq.%1$I WHERE vt > now() LIMIT %3$s) AS t) AS inv, '
			'(SELECT extract(epoch FROM now() - enqueued_at) FROM pgmq.%1$I ORDER BY msg_id LIMIT 1) AS age',
			e.rel, CASE WHEN e.est > $2::bigint THEN 0 ELSE $2::bigint + 1 END, $2::bigint + 1),
			false, true, '') AS r,
		pg_sequence_last_value(pg_get_serial_sequence(format('pgmq.%I', e.rel), 'msg_id')::regclass) AS sent
	FROM e
)
SELECT name, est,
	(xpath('/row/n/text()', r))[1]::text::bigint,
	(xpath('/row/inv/text()', r))[1]::text::bigint,
	coalesce((xpath('/row/age/text()', r))[1]::text::float8, 0),
	coalesce(sent, 0),
	now()
FROM x
ORDER BY name`

// SampleDepths reports the depth of the selected queues (all queues when
// opts.Queues is empty) in one round trip, with a cost bounded by the
// exact-count threshold rather than by the backlog. A queue that does not
// exist is simply absent from the result.
//
// Depths at or below the threshold are exact counts. Above it, Depth is the
// statistics' live-row estimate (Estimated is set), which PostgreSQL keeps
// current within about a second of activity; see BENCHMARKS.md for the
// measured error.
func (c *Client) SampleDepths(ctx context.Context, opts DepthOptions) ([]QueueDepth, error) {
	const op = "sample depths"
	threshold := opts.ExactCountThreshold
	if threshold == 0 {
		threshold = DefaultExactCountThreshold
	}
	if threshold < 0 {
		return nil, &OpError{Op: op, Err: fmt.Errorf("%w: negative exact count threshold %d", ErrInvalidArgument, threshold)}
	}
	names := make([]string, 0, len(opts.Queues))
	for _, q := range opts.Queues {
		if err := ValidateQueueName(q); err != nil {
			return nil, &OpError{Op: op, Queue: q, Err: err}
		}
		names = append(names, strings.ToLower(q))
	}

	depths, err := c.sampleDepths(ctx, names, threshold)
	// A queue dropped while the statement ran (its meta row seen, its table
	// gone) fails the statement; the next snapshot no longer lists it.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" && ctx.Err() == nil {
		depths, err = c.sampleDepths(ctx, names, threshold)
	}
	if err != nil {
		return nil, &OpError{Op: op, Queue: strings.Join(opts.Queues, ","), Err: err}
	}
	return depths, nil
}

func (c *Client) sampleDepths(ctx context.Context, names []string, threshold int64) ([]QueueDepth, error) {
	rows, err := c.DB().Query(ctx, sampleDepthsSQL, names, threshold)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []QueueDepth
	for rows.Next() {
		var (
			qd         QueueDepth
			est, n     int64
			ageSeconds float64
		)
		if err := rows.Scan(&qd.Queue, &est, &n, &qd.Invisible, &ageSeconds, &qd.TotalSent, &qd.SampledAt); err != nil {
			return nil, err
		}
		// n is capped at threshold+1 (and 0 when the statistics already say
		// the queue is larger), so either bound passed means "estimate".
		if est > threshold || n > threshold {
			qd.Estimated = true
			qd.Depth = max(est, n)
		} else {
			qd.Depth = n
		}
		qd.Invisible = min(qd.Invisible, qd.Depth)
		qd.Visible = qd.Depth - qd.Invisible
		if qd.Depth > 0 && ageSeconds > 0 {
			qd.OldestAge = time.Duration(ageSeconds * float64(time.Second))
		}
		out = append(out, qd)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

