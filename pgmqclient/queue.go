package pgmqclient

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// QueueInfo is one row of pgmq.list_queues().
type QueueInfo struct {
	Name          string
	IsPartitioned bool
	IsUnlogged    bool
	CreatedAt     time.Time
}

// CreateQueue creates the queue (pgmq.create). Creating a queue that
// already exists is not an error.
func (c *Client) CreateQueue(ctx context.Context, name string) error {
	return c.create(ctx, "create", `SELECT pgmq.create($1::text)`, name)
}

// CreateUnloggedQueue creates a queue whose message table is UNLOGGED
// (pgmq.create_unlogged): faster writes, but its messages are lost if the
// server crashes.
func (c *Client) CreateUnloggedQueue(ctx context.Context, name string) error {
	return c.create(ctx, "create unlogged", `SELECT pgmq.create_unlogged($1::text)`, name)
}

func (c *Client) create(ctx context.Context, op, sql, name string) error {
	if err := ValidateQueueName(name); err != nil {
		return &OpError{Op: op, Queue: name, Err: err}
	}
	if _, err := c.db.Exec(ctx, sql, name); err != nil {
		return opErr(c.db, op, name, err)
	}
	return nil
}

// dropQueueSQL asks pgmq.meta first so that a missing queue gives false on
// every release (older ones raise an error, which would also abort the
// caller's transaction). CASE only calls drop_queue when the queue exists.
const dropQueueSQL = `SELECT CASE
	WHEN EXISTS (SELECT 1 FROM pgmq.meta AS m WHERE lower(m.queue_name) = lower($1::text))
	THEN pgmq.drop_queue($1::text)
	ELSE false END`

// DropQueue drops the queue and its archive (pgmq.drop_queue). It reports
// false when there was no such queue.
func (c *Client) DropQueue(ctx context.Context, name string) (bool, error) {
	const op = "drop"
	if err := ValidateQueueName(name); err != nil {
		return false, &OpError{Op: op, Queue: name, Err: err}
	}
	var dropped bool
	if err := c.db.QueryRow(ctx, dropQueueSQL, name).Scan(&dropped); err != nil {
		return false, opErr(c.db, op, name, err)
	}
	return dropped, nil
}

// purgeQueueSQL, like dropQueueSQL, asks pgmq.meta first, so that a missing
// queue is reported the same way (NULL here) on every release.
const purgeQueueSQL = `SELECT CASE
	WHEN EXISTS (SELECT 1 FROM pgmq.meta AS m WHERE lower(m.queue_name) = lower($1::text))
	THEN pgmq.purge_queue($1::text) END`

// PurgeQueue deletes every message in the queue (pgmq.purge_queue) and
// returns how many it removed. The archive is kept. A missing queue gives
// an error wrapping ErrQueueNotFound.
func (c *Client) PurgeQueue(ctx context.Context, name string) (int64, error) {
	const op = "purge"
	if err := ValidateQueueName(name); err != nil {
		return 0, &OpError{Op: op, Queue: name, Err: err}
	}
	var n *int64
	if err := c.db.QueryRow(ctx, purgeQueueSQL, name).Scan(&n); err != nil {
		return 0, opErr(c.db, op, name, err)
	}
	if n == nil {
		return 0, &OpError{Op: op, Queue: name, Err: ErrQueueNotFound}
	}
	return *n, nil
}

// ListQueues returns every queue (pgmq.list_queues), ordered by name.
func (c *Client) ListQueues(ctx context.Context) ([]QueueInfo, error) {
	const op = "list queues"
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.list_queues() ORDER BY queue_name`)
	if err != nil {
		return nil, opErr(c.db, op, "", err)
	}
	var out []QueueInfo
	err = scanByName(rows, func(name string, q *QueueInfo) any {
		switch name {
		case "queue_name":
			return &q.Name
		case "is_partitioned":
			return &q.IsPartitioned
		case "is_unlogged":
			return &q.IsUnlogged
		case "created_at":
			return &q.CreatedAt
		}
		return nil
	}, func(q QueueInfo) { out = append(out, q) }, "queue_name")
	if err != nil {
		return nil, opErr(c.db, op, "", err)
	}
	return out, nil
}

// scanByName reads every row of rows into a fresh T, asking target for the
// scan destination of each column by name (nil skips the column), and hands
// each T to add. Mapping by name is what keeps the client working across
// PGMQ releases whose result types differ in columns and their order. The
// required columns must be present. rows is always closed.
func scanByName[T any](rows pgx.Rows, target func(column string, t *T) any, add func(T), required ...string) error {
	defer rows.Close()
	var dest []any
	for rows.Next() {
		// Fields are known once a row arrived, whatever the query exec mode.
		fields := rows.FieldDescriptions()
		if dest == nil {
			if err := checkColumns(fields, required); err != nil {
				return err
			}
			dest = make([]any, len(fields))
		}
		var t T
		for i, f := range fields {
			dest[i] = target(f.Name, &t)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		add(t)
	}
	return rows.Err()
}

func checkColumns(fields []pgconn.FieldDescription, required []string) error {
	for _, req := range required {
		found := false
		for _, f := range fields {
			found = found || f.Name == req
		}
		if !found {
			return &missingColumnError{column: req}
		}
	}
	return nil
}

// missingColumnError reports a result without a column the client needs,
// which means the server's PGMQ is not one the client knows.
type missingColumnError struct{ column string }

func (e *missingColumnError) Error() string {
	return "unexpected PGMQ result: no column " + e.column
}
