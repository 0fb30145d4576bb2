package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultNotifyThrottle is PGMQ's default throttle for insert
// notifications: at most one NOTIFY per queue per 250 ms.
const DefaultNotifyThrottle = 250 * time.Millisecond

// EnableNotifyInsert makes every insert into the queue raise a PostgreSQL
// notification (pgmq.enable_notify_insert, PGMQ 1.7.0 on), at most one per
// throttle (rounded up to milliseconds; 0 notifies on every insert; PGMQ's
// own default is DefaultNotifyThrottle). Releases before 1.8.0 cannot
// throttle: there only throttle 0 is accepted, and any other value gives an
// error matching ErrUnsupported. The notification goes to the channel
// NotifyChannel(queue), with no payload; see Waiter for a consumer.
func (c *Client) EnableNotifyInsert(ctx context.Context, queue string, throttle time.Duration) error {
	const op = "enable notify insert"
	if err := ValidateQueueName(queue); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	ms, err := ceilUnits(throttle, time.Millisecond, "throttle")
	if err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, FeatureNotifyInsert); err != nil {
		return err
	}
	if caps, _ := c.Capabilities(ctx); !caps.Has(FeatureNotifyThrottle) {
		if ms != 0 {
			return &OpError{Op: op, Queue: queue, Err: &UnsupportedError{Feature: FeatureNotifyThrottle, Installed: caps.installed()}}
		}
		if _, err := c.db.Exec(ctx, `SELECT pgmq.enable_notify_insert($1::text)`, queue); err != nil {
			return opErr(c.db, op, queue, err)
		}
		return nil
	}
	if _, err := c.db.Exec(ctx, `SELECT pgmq.enable_notify_insert($1::text, $2::integer)`, queue, ms); err != nil {
		return opErr(c.db, op, queue, err)
	}
	return nil
}

// DisableNotifyInsert stops the queue's insert notifications
// (pgmq.disable_notify_insert, PGMQ 1.7.0 on).
func (c *Client) DisableNotifyInsert(ctx context.Context, queue string) error {
	const op = "disable notify insert"
	if err := ValidateQueueName(queue); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, FeatureNotifyInsert); err != nil {
		return err
	}
	if _, err := c.db.Exec(ctx, `SELECT pgmq.disable_notify_insert($1::text)`, queue); err != nil {
		return opErr(c.db, op, queue, err)
	}
	return nil
}

// NotifyInsertEnabled reports whether inserts into the queue raise
// notifications: whether its table has an insert trigger that calls a
// function of schema pgmq. It is false for a queue that does not exist,
// and on releases without insert notifications.
func (c *Client) NotifyInsertEnabled(ctx context.Context, queue string) (bool, error) {
	const op = "notify insert enabled"
	if err := ValidateQueueName(queue); err != nil {
		return false, &OpError{Op: op, Queue: queue, Err: err}
	}
	table, err := queueTable(ctx, c.db, queue)
	switch {
	case errors.Is(err, ErrQueueNotFound):
		return false, nil
	case err != nil:
		return false, opErr(c.db, op, queue, err)
	}
	var on bool
	if err := c.db.QueryRow(ctx, notifyEnabledSQL, table).Scan(&on); err != nil {
		return false, opErr(c.db, op, queue, err)
	}
	return on, nil
}

// notifyEnabledSQL: an insert trigger (tgtype bit 2) on the queue table
// whose function lives in schema pgmq. $1 is the quoted table name.
const notifyEnabledSQL = `SELECT EXISTS (
	SELECT 1 FROM pg_catalog.pg_trigger AS t
	JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
	JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
	WHERE t.tgrelid = to_regclass($1::text) AND n.nspname = 'pgmq'
	  AND NOT t.tgisinternal AND (t.tgtype & 4) <> 0)`

// NotifyChannel is the channel PGMQ notifies on when a message is inserted
// into the queue: "pgmq.q_<queue in lower case>.INSERT". (From PGMQ 1.13.1
// on the channel keeps the case of the name given to enable_notify_insert;
// for a queue whose name has upper-case letters, Waiter listens on both.)
func NotifyChannel(queue string) string {
	return "pgmq.q_" + strings.ToLower(queue) + ".INSERT"
}

// notifySettingsSQL reads the queue's throttle and the name notifications were
// enabled under, from pgmq.notify_insert_throttle (PGMQ 1.8.0 on; before,
// there is no throttle and the name is unknown).
//
// silent is true when the queue's insert trigger cannot fire: its name has
// upper-case letters and the trigger, PGMQ's notify_queue_listeners, gets
// no argument, so it looks the throttle up under the lower-case table name
// and finds nothing (fixed in PGMQ 1.13.1, which passes the name).
const notifySettingsSQL = `SELECT t.queue_name::text, t.throttle_interval_ms,
	t.queue_name <> lower(t.queue_name) AND EXISTS (
		SELECT 1 FROM pg_catalog.pg_trigger AS g
		JOIN pg_catalog.pg_proc AS p ON p.oid = g.tgfoid
		JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
		WHERE g.tgrelid = to_regclass('pgmq.' || quote_ident('q_' || lower(t.queue_name)))
		  AND n.nspname = 'pgmq' AND p.proname = 'notify_queue_listeners' AND g.tgnargs = 0) AS silent
	FROM pgmq.notify_insert_throttle AS t
	WHERE lower(t.queue_name) = lower($1::text)`

// notifyState is what a Waiter needs to know about a queue's notifications.
type notifyState struct {
	enabled  bool
	channels []string
	throttle time.Duration
	// silent: notifications are on but PGMQ never sends them (see notifySettingsSQL).
	silent bool
}

// loadNotifyState asks db whether the queue notifies, on which channels and
// with which throttle.
func loadNotifyState(ctx context.Context, db DB, queue string) (notifyState, error) {
	c := &Client{db: db}
	on, err := c.NotifyInsertEnabled(ctx, queue)
	if err != nil || !on {
		return notifyState{}, err
	}
	st := notifyState{enabled: true, channels: []string{NotifyChannel(queue)}}
	names := []string{queue}
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass('pgmq.notify_insert_throttle') IS NOT NULL`).Scan(&exists); err != nil {
		return notifyState{}, opErr(db, "notify settings", queue, err)
	}
	if exists {
		var name string
		var ms int32
		var silent bool
		err := db.QueryRow(ctx, notifySettingsSQL, queue).Scan(&name, &ms, &silent)
		switch {
		case err == nil:
			names = append(names, name)
			st.throttle = time.Duration(ms) * time.Millisecond
		case !errors.Is(err, pgx.ErrNoRows):
			return notifyState{}, opErr(db, "notify settings", queue, err)
		}
		if silent {
			// PGMQ 1.8 to 1.13.0 look the throttle up by the table's
			// (lower-case) name, find no row for a queue named with
			// upper-case letters, and never notify: poll instead.
			return notifyState{silent: true}, nil
		}
	}
	for _, n := range names {
		if ch := "pgmq.q_" + n + ".INSERT"; !slices.Contains(st.channels, ch) {
			st.channels = append(st.channels, ch)
		}
	}
	return st, nil
}

func (s notifyState) String() string {
	if s.silent {
		return "notifications on but never sent (PGMQ 1.8 to 1.13.0, queue name with upper-case letters)"
	}
	if !s.enabled {
		return "notifications off"
	}
	return fmt.Sprintf("notifications on %v, throttle %v", s.channels, s.throttle)
}
