package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultExactCountThreshold is the depth up to which queues are counted
// exactly. Above it the depth comes from PostgreSQL's statistics, so the
// cost of a sample does not grow with the backlog.
const DefaultExactCountThreshold = 50_000

// DepthOptions selects the queues a depth sample reports and how it counts.
type DepthOptions struct {
	// Queues limits the sample to these queues. Empty means every queue in
	// pgmq.meta, discovered at each sample. A named queue that does not
	// exist is simply absent from the result.
	Queues []string
	// ExactCountThreshold is the largest depth counted exactly; zero means
	// DefaultExactCountThreshold.
	ExactCountThreshold int64
}

// QueueDepth is one queue's depth as a sample saw it.
type QueueDepth struct {
	// Queue is the name as PGMQ stores it in pgmq.meta.
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
	// Estimated reports that Depth (and so Visible) come from the table's
	// live-row statistics rather than a count, because the queue holds more
	// than the exact-count threshold.
	Estimated bool
	// SampledAt is the server's clock when the sample was taken.
	SampledAt time.Time
}

// SampleDepths reports the depth of the selected queues with a cost bounded
// by the exact-count threshold rather than by the backlog. It discovers the
// queues and then samples them: two round trips. To sample repeatedly in
// one round trip, keep a DepthSampler.
func (c *Client) SampleDepths(ctx context.Context, opts DepthOptions) ([]QueueDepth, error) {
	s, err := NewDepthSampler(c.db, opts)
	if err != nil {
		return nil, err
	}
	return s.Sample(ctx)
}

// DepthSampler samples queue depths repeatedly. It remembers the queues it
// found and keeps the sampling statement prepared on the connection, so a
// sample is one round trip (discovery and sampling pipelined together) and
// the server does not plan the statement again. When the set of queues
// changes it samples again at once with the new set.
//
// Cost per queue: two primary-key probes (the oldest and the newest
// message), a count capped at threshold+1 rows, skipped when the estimate
// already says the queue is larger, and a capped count of invisible rows
// through the vt index. Nothing scans more than threshold+1 rows.
//
// The estimate is the table's live-row statistics
// (pg_stat_user_tables.n_live_tup) bounded above by the span of message
// ids, which is exact for a queue consumed in order and never below the
// true depth.
//
// A DepthSampler is safe for concurrent use; samples run one at a time.
type DepthSampler struct {
	db        DB
	names     []string // lower-cased filter; empty means all queues
	threshold int64

	mu   sync.Mutex
	plan *depthPlan // statement for the queues seen last; nil before the first sample
}

// NewDepthSampler validates opts and returns a sampler running on db. Use a
// dedicated connection (*pgx.Conn) or a pool; no SQL is sent until Sample.
func NewDepthSampler(db DB, opts DepthOptions) (*DepthSampler, error) {
	const op = "sample depths"
	threshold := opts.ExactCountThreshold
	if threshold == 0 {
		threshold = DefaultExactCountThreshold
	}
	if threshold < 0 {
		return nil, invalidArg(op, "", "negative exact count threshold %d", threshold)
	}
	names := make([]string, 0, len(opts.Queues))
	for _, q := range opts.Queues {
		if err := ValidateQueueName(q); err != nil {
			return nil, &OpError{Op: op, Queue: q, Err: err}
		}
		names = append(names, strings.ToLower(q))
	}
	return &DepthSampler{db: db, names: names, threshold: threshold}, nil
}

// discoverSQL lists the queues with their table's oid, the messages ever
// sent and the server's clock. Queue names never reach SQL as text.
const discoverSQL = `
SELECT m.queue_name, c.relname, c.oid, coalesce(pg_sequence_last_value(s.oid), 0), now()
FROM pgmq.meta AS m
JOIN pg_catalog.pg_class AS c
	ON c.relnamespace = 'pgmq'::regnamespace AND c.relname = 'q_' || lower(m.queue_name)
LEFT JOIN pg_catalog.pg_class AS s
	ON s.relnamespace = c.relnamespace AND s.relname = c.relname || '_msg_id_seq' AND s.relkind = 'S'
WHERE cardinality($1::text[]) = 0 OR lower(m.queue_name) = ANY ($1::text[])
ORDER BY m.queue_name`

// discovered is one row of discoverSQL.
type discovered struct {
	name string // as in pgmq.meta
	rel  string // the table's name, as the server folded it
	oid  uint32
	sent int64
}

// depthPlan is the sampling statement for one set of queues.
type depthPlan struct {
	queues []discovered
	sql    string
}

// newDepthPlan builds one statement sampling every queue: a UNION ALL of
// one branch per queue. The invisible count is ordered by vt so that the
// generic plan, which cannot see the LIMIT, still walks the vt index
// instead of scanning the table. Table names are quoted identifiers; the threshold
// and the tables' oids are bind parameters, so the statement text depends
// only on the set of queues and stays prepared across samples.
func newDepthPlan(queues []discovered) *depthPlan {
	var b strings.Builder
	for i, q := range queues {
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		table := pgx.Identifier{"pgmq", q.rel}.Sanitize()
		oid := "$" + strconv.Itoa(i+2) + "::oid"
		fmt.Fprintf(&b, `SELECT %d, s.live, lo.msg_id, lo.enqueued_at, hi.msg_id,
	(SELECT count(*) FROM (SELECT 1 FROM %[3]s LIMIT CASE WHEN least(s.live, hi.msg_id - lo.msg_id + 1) > $1::bigint THEN 0 ELSE $1::bigint + 1 END) AS t),
	(SELECT count(*) FROM (SELECT 1 FROM %[3]s WHERE vt > now() ORDER BY vt LIMIT $1::bigint + 1) AS t)
FROM (SELECT pg_stat_get_live_tuples(%[2]s) AS live) AS s
LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM %[3]s ORDER BY msg_id LIMIT 1) AS lo ON true
LEFT JOIN LATERAL (SELECT msg_id FROM %[3]s ORDER BY msg_id DESC LIMIT 1) AS hi ON true`, i, oid, table)
	}
	return &depthPlan{queues: queues, sql: b.String()}
}

func (p *depthPlan) args(threshold int64) []any {
	args := make([]any, 1, len(p.queues)+1)
	args[0] = threshold
	for _, q := range p.queues {
		args = append(args, q.oid)
	}
	return args
}

// matches reports whether the plan was built for exactly these queues.
func (p *depthPlan) matches(queues []discovered) bool {
	return p != nil && slices.EqualFunc(p.queues, queues, func(a, b discovered) bool {
		return a.name == b.name && a.oid == b.oid
	})
}

// batcher is the part of *pgx.Conn, *pgxpool.Pool and pgx.Tx that sends
// several statements in one round trip.
type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Sample reports the depth of the selected queues.
//
// Depths at or below the threshold are exact counts. Above it, Depth is the
// live-row estimate of pg_stat_user_tables (Estimated is set), which
// PostgreSQL keeps current within about a second of activity.
func (s *DepthSampler) Sample(ctx context.Context) ([]QueueDepth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	depths, err := s.sample(ctx)
	if err != nil {
		return nil, &OpError{Op: "sample depths", Queue: strings.Join(s.names, ","), Err: err}
	}
	return depths, nil
}

func (s *DepthSampler) sample(ctx context.Context) ([]QueueDepth, error) {
	b, canBatch := s.db.(batcher)
	// With no queues the plan has no statement to pipeline (an empty one
	// would make pgx panic): discovery alone is the sample.
	if s.plan != nil && len(s.plan.queues) > 0 && canBatch {
		queues, now, rows, err := s.pipelined(ctx, b)
		var pgErr *pgconn.PgError
		switch {
		case err == nil && s.plan.matches(queues):
			return s.depths(queues, now, rows), nil
		case err == nil:
			// The set of queues changed: sample the new set now.
			return s.withPlan(ctx, queues, now)
		case !errors.As(err, &pgErr) || pgErr.Code != "42P01":
			return nil, err
		}
		// A table of the plan is gone (its queue was dropped), which can
		// fail the batch before discovery ran: discover again.
	}
	queues, now, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	return s.withPlan(ctx, queues, now)
}

// pipelined sends the current plan and discovery in one round trip.
//
// The plan goes first: the batch is one implicit transaction, and locking
// a queue's table before its id sequence (which discovery reads) is the
// order DROP TABLE takes them in. The other order deadlocks with a
// concurrent drop_queue, and PostgreSQL may then end the application's
// drop rather than the sample.
func (s *DepthSampler) pipelined(ctx context.Context, b batcher) ([]discovered, time.Time, [][]any, error) {
	batch := &pgx.Batch{}
	batch.Queue(s.plan.sql, s.plan.args(s.threshold)...)
	batch.Queue(discoverSQL, s.names)
	br := b.SendBatch(ctx, batch)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	values, err := scanDepthRows(rows)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	queues, now, err := scanDiscovered(rows)
	return queues, now, values, err
}

func (s *DepthSampler) discover(ctx context.Context) ([]discovered, time.Time, error) {
	rows, err := s.db.Query(ctx, discoverSQL, s.names)
	if err != nil {
		return nil, time.Time{}, err
	}
	return scanDiscovered(rows)
}

// withPlan builds the plan for queues and runs it alone.
func (s *DepthSampler) withPlan(ctx context.Context, queues []discovered, now time.Time) ([]QueueDepth, error) {
	s.plan = newDepthPlan(queues)
	if len(queues) == 0 {
		return []QueueDepth{}, nil
	}
	rows, err := s.db.Query(ctx, s.plan.sql, s.plan.args(s.threshold)...)
	if err != nil {
		s.plan = nil // rebuild from a fresh discovery next time
		return nil, err
	}
	values, err := scanDepthRows(rows)
	if err != nil {
		s.plan = nil
		return nil, err
	}
	return s.depths(queues, now, values), nil
}

func scanDiscovered(rows pgx.Rows) ([]discovered, time.Time, error) {
	defer rows.Close()
	var (
		out []discovered
		now time.Time
	)
	for rows.Next() {
		var d discovered
		if err := rows.Scan(&d.name, &d.rel, &d.oid, &d.sent, &now); err != nil {
			return nil, time.Time{}, err
		}
		out = append(out, d)
	}
	return out, now, rows.Err()
}

// depthRow is one branch of the plan.
type depthRow struct {
	live       int64      // the statistics' live rows
	loID, hiID *int64     // smallest and largest msg_id; nil when empty
	oldest     *time.Time // enqueued_at of the smallest msg_id
	n, inv     int64      // capped counts of all and of invisible rows
}

// estimate is the statistics' live rows, bounded by the id span: the
// statistics can drift (a VACUUM racing with pending counts may count rows
// twice), while the span is never below the true depth and is exact for a
// queue consumed in order.
func (r depthRow) estimate() int64 {
	if r.loID == nil || r.hiID == nil {
		return 0
	}
	return max(min(r.live, *r.hiID-*r.loID+1), 0)
}

func scanDepthRows(rows pgx.Rows) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		var (
			i int
			r depthRow
		)
		if err := rows.Scan(&i, &r.live, &r.loID, &r.oldest, &r.hiID, &r.n, &r.inv); err != nil {
			return nil, err
		}
		out = append(out, []any{i, r})
	}
	return out, rows.Err()
}

// depths turns the plan's rows into QueueDepths, in the plan's queue order.
func (s *DepthSampler) depths(queues []discovered, now time.Time, values [][]any) []QueueDepth {
	out := make([]QueueDepth, len(queues))
	for i, q := range queues {
		out[i] = QueueDepth{Queue: q.name, TotalSent: q.sent, SampledAt: now}
	}
	for _, v := range values {
		i, r := v[0].(int), v[1].(depthRow)
		d := &out[i]
		// n is capped at threshold+1, and 0 when the statistics already
		// say the queue is larger: either bound passed means "estimate".
		if est := r.estimate(); est > s.threshold || r.n > s.threshold {
			d.Estimated = true
			d.Depth = max(est, r.n)
		} else {
			d.Depth = r.n
		}
		d.Invisible = min(r.inv, d.Depth)
		d.Visible = d.Depth - d.Invisible
		if d.Depth > 0 && r.oldest != nil && now.After(*r.oldest) {
			d.OldestAge = now.Sub(*r.oldest)
		}
	}
	return out
}
