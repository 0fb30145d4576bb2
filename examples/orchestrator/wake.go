package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// How idle processors learn that messages arrived. With -notify auto and a
// PGMQ that has insert notifications (1.7.0 on), one watcher turns them on
// for the queue and waits on them through a pgmqclient.Waiter on its own
// connection (outside the pool, so pool utilization still shows only the
// processors); it wakes every idle processor at once. Otherwise, or while
// the watcher is down, idle processors look again every pollInterval.

// notifyFallback is how long an idle processor trusts the watcher before
// it looks for a message anyway. A variable for the tests.
var notifyFallback = 5 * time.Second

// wakeup connects idle processors with the watcher.
type wakeup struct {
	// listening is true while the watcher waits on notifications.
	listening atomic.Bool
	mu        sync.Mutex
	ch        chan struct{} // closed by broadcast
	// idle holds a token when a processor found the queue empty: the
	// watcher waits for messages only then, so a backlog does not make it
	// spin.
	idle chan struct{}
}

func newWakeup() *wakeup {
	return &wakeup{ch: make(chan struct{}), idle: make(chan struct{}, 1)}
}

// broadcast wakes every processor waiting in idleWait.
func (w *wakeup) broadcast() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

// idleWait is what a processor does after finding the queue empty: it
// waits for the watcher's broadcast (or, while nobody listens, for the
// poll interval), at most until stop ends.
func (w *wakeup) idleWait(stop context.Context) {
	w.mu.Lock()
	ch := w.ch // taken before telling the watcher, so no broadcast is missed
	w.mu.Unlock()
	select {
	case w.idle <- struct{}{}:
	default:
	}
	d := pollInterval
	if w.listening.Load() {
		d = notifyFallback
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop.Done():
	case <-ch:
	case <-t.C:
	}
}

// watch runs the watcher until ctx ends (see wakeup).
func (o *orchestrator) watch(ctx context.Context) {
	if o.cfg.Processors == 0 || o.cfg.Notify == "off" {
		o.log.Info("idle processors poll", "interval", pollInterval, "notify", o.cfg.Notify)
		return
	}
	if o.pooled {
		o.log.Info("idle processors poll: a pooler answers for the server, and LISTEN needs a session of its own", "interval", pollInterval)
		return
	}
	for ctx.Err() == nil {
		err := o.watchOnce(ctx)
		o.wake.listening.Store(false)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, pgmqclient.ErrUnsupported):
			o.log.Info("no usable insert notifications: idle processors poll", "interval", pollInterval, "reason", err)
			return
		case err != nil:
			o.errs.report("watcher", err)
			wait(ctx, retryInterval)
		}
	}
}

// watchOnce turns notifications on, then wakes the processors whenever
// messages arrive, until ctx ends or the connection fails.
func (o *orchestrator) watchOnce(ctx context.Context) error {
	caps, err := o.client.Capabilities(ctx)
	if err != nil {
		return err
	}
	throttle := pgmqclient.DefaultNotifyThrottle
	if !caps.Has(pgmqclient.FeatureNotifyThrottle) {
		throttle = 0 // 1.7.x: every insert notifies
	}
	on, err := o.client.NotifyInsertEnabled(ctx, o.cfg.Queue)
	if err != nil {
		return err
	}
	if !on {
		if err := o.client.EnableNotifyInsert(ctx, o.cfg.Queue, throttle); err != nil {
			return err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, o.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	w, err := pgmqclient.NewWaiter(ctx, conn, o.cfg.Queue)
	if err != nil {
		return err
	}
	if !w.Notifications() {
		return fmt.Errorf("%w: waiter %v", pgmqclient.ErrUnsupported, w)
	}
	o.wake.listening.Store(true)
	o.log.Info("idle processors wait on insert notifications", "queue", o.cfg.Queue, "throttle", throttle)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.wake.idle:
		}
		if err := w.Wait(ctx); err != nil {
			return err
		}
		o.wake.broadcast()
	}
}
