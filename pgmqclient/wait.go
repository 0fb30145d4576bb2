package pgmqclient

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of a Waiter's intervals.
const (
	// DefaultWaitPollInterval is how often a Waiter without notifications
	// looks for messages.
	DefaultWaitPollInterval = 250 * time.Millisecond
	// DefaultWaitRecheckInterval is how long a Waiter with notifications
	// trusts silence before it looks anyway (a safety net: notifications are
	// lost when the session drops, and none is sent for a message that
	// becomes visible when its delay or visibility timeout runs out).
	DefaultWaitRecheckInterval = 5 * time.Second
)

// WaiterOption adjusts NewWaiter and NewPoolWaiter.
type WaiterOption func(*waiterOptions)

type waiterOptions struct {
	poll, recheck time.Duration
	notify        bool
}

// WithWaitPollInterval sets how often a Waiter without notifications looks
// for messages (default DefaultWaitPollInterval). Values <= 0 are ignored.
func WithWaitPollInterval(d time.Duration) WaiterOption {
	return func(o *waiterOptions) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithWaitRecheckInterval sets how long a Waiter with notifications waits
// for one before it looks for messages anyway (default
// DefaultWaitRecheckInterval). Values <= 0 are ignored.
func WithWaitRecheckInterval(d time.Duration) WaiterOption {
	return func(o *waiterOptions) {
		if d > 0 {
			o.recheck = d
		}
	}
}

// WithWaitNotifications(false) makes the Waiter poll even when the queue
// notifies (for comparison, or behind a pooler that cannot LISTEN).
func WithWaitNotifications(use bool) WaiterOption {
	return func(o *waiterOptions) { o.notify = use }
}

// Waiter blocks until a queue has a visible message. When the queue's
// insert notifications are on (see Client.EnableNotifyInsert) it LISTENs
// for them and wakes as soon as a message is committed; otherwise it polls.
// Either way it confirms with a cheap query (an index probe on vt) that a
// message is visible before it returns.
//
// LISTEN belongs to a session, so a Waiter needs a connection of its own:
// NewWaiter takes a *pgx.Conn the caller dedicates to it, NewPoolWaiter
// acquires one from a pool and gives it back on Close. The connection must
// be a real session: PgBouncer in transaction mode cannot LISTEN (use
// WithWaitNotifications(false) there). A Waiter is not safe for concurrent
// use; give each goroutine its own, or share one Wait loop.
//
// Wait only says that a message is visible; another consumer may take it
// first, so read as usual (Read, Pop, ...) after Wait returns.
//
// PGMQ 1.8 to 1.13.0 never notify for a queue whose name has upper-case
// letters (the trigger looks the queue up under its lower-case table name);
// a Waiter detects that and polls.
//
// PGMQ throttles notifications (at most one per throttle interval, see
// DefaultNotifyThrottle): an insert right after a notified one is not
// announced. The Waiter knows the queue's throttle and looks again once it
// has passed after each notification, so such a message waits at most one
// throttle interval.
type Waiter struct {
	conn     *pgx.Conn
	release  func()
	queue    string
	table    string
	state    notifyState
	opts     waiterOptions
	listened []string
	// lastNotify is when the last notification arrived (zero if none).
	lastNotify time.Time
}

// NewWaiter returns a Waiter for queue on conn, which it uses alone until
// Close (Close does not close conn). It finds out whether the queue
// notifies and, if so, LISTENs on its channels.
func NewWaiter(ctx context.Context, conn *pgx.Conn, queue string, opts ...WaiterOption) (*Waiter, error) {
	const op = "wait"
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: op, Queue: queue, Err: err}
	}
	if conn == nil {
		return nil, invalidArg(op, queue, "nil connection")
	}
	table, err := queueTable(ctx, conn, queue)
	if err != nil {
		return nil, opErr(conn, op, queue, err)
	}
	w := &Waiter{conn: conn, queue: queue, table: table,
		opts: waiterOptions{poll: DefaultWaitPollInterval, recheck: DefaultWaitRecheckInterval, notify: true}}
	for _, o := range opts {
		if o != nil {
			o(&w.opts)
		}
	}
	if w.opts.notify {
		if w.state, err = loadNotifyState(ctx, conn, queue); err != nil {
			return nil, err
		}
	}
	for _, ch := range w.state.channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			_ = w.unlisten(context.WithoutCancel(ctx))
			return nil, opErr(conn, op, queue, err)
		}
		w.listened = append(w.listened, ch)
	}
	if w.state.throttle > 0 {
		// An insert just before the LISTEN may have used up the throttle
		// window: the next one inside it would go unannounced.
		w.lastNotify = time.Now()
	}
	return w, nil
}

// NewPoolWaiter is NewWaiter on a connection acquired from pool; Close
// gives it back.
func NewPoolWaiter(ctx context.Context, pool *pgxpool.Pool, queue string, opts ...WaiterOption) (*Waiter, error) {
	if err := ValidateQueueName(queue); err != nil {
		return nil, &OpError{Op: "wait", Queue: queue, Err: err}
	}
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, opErr(pool, "wait", queue, err)
	}
	w, err := NewWaiter(ctx, pc.Conn(), queue, opts...)
	if err != nil {
		pc.Release()
		return nil, err
	}
	w.release = pc.Release
	return w, nil
}

// Notifications reports whether the Waiter listens for notifications
// (false: it polls).
func (w *Waiter) Notifications() bool { return len(w.listened) > 0 }

// String says how the Waiter waits, for logs: on which channels, with which
// throttle, or why it polls.
func (w *Waiter) String() string {
	if !w.opts.notify {
		return "polling (notifications not used)"
	}
	if !w.Notifications() {
		return "polling: " + w.state.String()
	}
	return w.state.String()
}

// Wait returns nil as soon as the queue has a visible message, or an error
// wrapping ctx's error when ctx ends first.
func (w *Waiter) Wait(ctx context.Context) error {
	const op = "wait"
	for {
		visible, err := w.probe(ctx)
		switch {
		case ctx.Err() != nil:
			return &OpError{Op: op, Queue: w.queue, Err: ctx.Err()}
		case err != nil:
			return opErr(w.conn, op, w.queue, err)
		case visible:
			return nil
		}
		if !w.Notifications() {
			t := time.NewTimer(w.opts.poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return &OpError{Op: op, Queue: w.queue, Err: ctx.Err()}
			case <-t.C:
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, w.silence())
		_, err = w.conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			w.lastNotify = time.Now()
		case ctx.Err() != nil:
			return &OpError{Op: op, Queue: w.queue, Err: ctx.Err()}
		case errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil:
			// Silence for as long as we trust it: look again.
		default:
			return opErr(w.conn, op, w.queue, err)
		}
	}
}

// probeTimeout bounds the look for a visible message, which runs detached
// from the caller's context.
const probeTimeout = 5 * time.Second

// probe reports whether the queue holds a visible message. A cancel that
// came in the middle of the statement would make pgx close the Waiter's
// connection; the probe (one index lookup) is left to finish instead,
// within probeTimeout, and the caller's context is checked after it.
func (w *Waiter) probe(ctx context.Context) (bool, error) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	defer cancel()
	var visible bool
	err := w.conn.QueryRow(pctx, `SELECT EXISTS (SELECT 1 FROM `+w.table+` WHERE vt <= clock_timestamp())`).Scan(&visible)
	return visible, err
}

// silence is how long to wait for a notification before looking anyway:
// the recheck interval, cut short to the end of the throttle window after
// the last notification (an insert within it was not announced).
func (w *Waiter) silence() time.Duration {
	d := w.opts.recheck
	if w.state.throttle > 0 && !w.lastNotify.IsZero() {
		if until := time.Until(w.lastNotify.Add(w.state.throttle)) + time.Millisecond; until > 0 && until < d {
			d = until
		}
	}
	return d
}

// Close stops listening and, for a pool Waiter, gives the connection back
// (closing it instead if it could not be cleaned up).
func (w *Waiter) Close(ctx context.Context) error {
	err := w.unlisten(ctx)
	if w.release != nil {
		if err != nil {
			_ = w.conn.Close(ctx)
		}
		w.release()
		w.release = nil
	}
	return err
}

func (w *Waiter) unlisten(ctx context.Context) error {
	var errs []error
	for _, ch := range w.listened {
		if _, err := w.conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			errs = append(errs, err)
		}
	}
	w.listened = nil
	if err := errors.Join(errs...); err != nil {
		return opErr(w.conn, "wait", w.queue, err)
	}
	return nil
}
