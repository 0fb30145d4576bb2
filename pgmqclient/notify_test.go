package pgmqclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// notifying sets up a queue with insert notifications (throttle as given),
// skipping the test where the installed PGMQ has none (TestNotifyInsert
// checks the error there).
func notifying(t *testing.T, queue string, throttle time.Duration) (context.Context, *pgmqclient.Client, *pgmqtest.DB) {
	t.Helper()
	ctx, c, db := setup(t, queue)
	cs := caps(t, ctx, c)
	if !cs.Has(pgmqclient.FeatureNotifyInsert) || (throttle != 0 && !cs.Has(pgmqclient.FeatureNotifyThrottle)) {
		t.Skipf("no insert notifications (throttle %v) in this PGMQ", throttle)
	}
	if err := c.EnableNotifyInsert(ctx, queue, throttle); err != nil {
		t.Fatal(err)
	}
	return ctx, c, db
}

func TestNotifyInsert(t *testing.T) {
	ctx, c, db := setup(t, "note")
	cs := caps(t, ctx, c)
	if on, err := c.NotifyInsertEnabled(ctx, "note"); err != nil || on {
		t.Fatalf("NotifyInsertEnabled before enabling = %v, %v", on, err)
	}
	err := c.EnableNotifyInsert(ctx, "note", 0)
	if !cs.Has(pgmqclient.FeatureNotifyInsert) {
		wantUnsupported(t, err, "enable notify insert", pgmqclient.FeatureNotifyInsert)
		wantUnsupported(t, c.DisableNotifyInsert(ctx, "note"), "disable notify insert", pgmqclient.FeatureNotifyInsert)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if on, err := c.NotifyInsertEnabled(ctx, "note"); err != nil || !on {
		t.Fatalf("NotifyInsertEnabled after enabling = %v, %v", on, err)
	}
	listener, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{pgmqclient.NotifyChannel("note")}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "note", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil || n.Channel != "pgmq.q_note.INSERT" {
		t.Fatalf("notification = %+v, %v; want one on pgmq.q_note.INSERT", n, err)
	}
	if err := c.DisableNotifyInsert(ctx, "note"); err != nil {
		t.Fatal(err)
	}
	if on, err := c.NotifyInsertEnabled(ctx, "note"); err != nil || on {
		t.Fatalf("NotifyInsertEnabled after disabling = %v, %v", on, err)
	}
}

func TestNotifyInsertRefusedBeforeSQL(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	if err := c.EnableNotifyInsert(ctx, "q", -time.Millisecond); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("negative throttle: %v", err)
	}
	if err := c.DisableNotifyInsert(ctx, "q;"); !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := pgmqclient.NewWaiter(ctx, nil, "q"); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("nil connection: %v", err)
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("%d statements sent for refused arguments", n)
	}
}

// waitAsync runs w.Wait in a goroutine and returns its result channel.
func waitAsync(ctx context.Context, w *pgmqclient.Waiter) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.Wait(ctx) }()
	return done
}

// A notification wakes the Waiter: with a recheck interval of an hour,
// nothing else could within the test's deadline.
func TestWaiterWakesOnNotification(t *testing.T) {
	ctx, c, db := notifying(t, "wake", 0)
	w, err := pgmqclient.NewPoolWaiter(ctx, db.Pool, "wake", pgmqclient.WithWaitRecheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if !w.Notifications() {
		t.Fatal("Waiter polls although the queue notifies")
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for round := range 3 {
		done := waitAsync(wctx, w)
		if _, err := c.Send(ctx, "wake", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: Wait = %v", round, err)
		}
		if got, err := c.Pop(ctx, "wake", 10); err != nil || len(got) != 1 {
			t.Fatalf("round %d: Pop = %v, %v", round, got, err)
		}
	}
}

// With a throttle, an insert right after a notified one raises none; the
// Waiter looks again when the throttle window ends.
func TestWaiterCoversThrottledInserts(t *testing.T) {
	ctx, c, db := notifying(t, "throttled", 300*time.Millisecond)
	w, err := pgmqclient.NewPoolWaiter(ctx, db.Pool, "throttled", pgmqclient.WithWaitRecheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for round := range 3 {
		done := waitAsync(wctx, w)
		if _, err := c.Send(ctx, "throttled", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: Wait = %v", round, err)
		}
		if got, err := c.Pop(ctx, "throttled", 10); err != nil || len(got) != 1 {
			t.Fatalf("round %d: Pop = %v, %v", round, got, err)
		}
	}
}

func TestWaiterPollsWithoutNotifications(t *testing.T) {
	ctx, c, db := setup(t, "polled")
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	w, err := pgmqclient.NewWaiter(ctx, conn, "polled", pgmqclient.WithWaitPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if w.Notifications() {
		t.Fatal("Waiter listens although the queue does not notify")
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := waitAsync(wctx, w)
	if _, err := c.Send(ctx, "polled", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait = %v", err)
	}
	// A delayed message is not visible: Wait keeps waiting until ctx ends.
	if _, err := c.Pop(ctx, "polled", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "polled", json.RawMessage(`{}`), pgmqclient.WithDelay(time.Hour)); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := w.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a queue holding only a delayed message = %v, want the context's deadline", err)
	}
}

// When ctx ends during a wait for a notification, Wait says so and the
// connection stays usable.
func TestWaiterContextEnds(t *testing.T) {
	ctx, c, db := notifying(t, "ends", 0)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	w, err := pgmqclient.NewWaiter(ctx, conn, "ends", pgmqclient.WithWaitRecheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := waitAsync(wctx, w)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || conn.IsClosed() {
		t.Fatalf("connection after a canceled wait: %v (closed %v)", err, conn.IsClosed())
	}
	// The Waiter still works after an ended wait.
	wctx2, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	done = waitAsync(wctx2, w)
	if _, err := c.Send(ctx, "ends", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait after a canceled one = %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var listening int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_listening_channels()").Scan(&listening); err != nil || listening != 0 {
		t.Fatalf("channels still listened after Close: %d, %v", listening, err)
	}
}

// A queue named with upper-case letters: where PGMQ never notifies for it
// (1.8 to 1.13.0) the Waiter polls, elsewhere it listens; either way Wait
// returns once a message is there. With a recheck interval of an hour, a
// listening Waiter can only have been woken by a notification.
func TestWaiterMixedCaseQueue(t *testing.T) {
	ctx, c, db := notifying(t, "MixedCase", 0)
	w, err := pgmqclient.NewPoolWaiter(ctx, db.Pool, "MixedCase",
		pgmqclient.WithWaitRecheckInterval(time.Hour), pgmqclient.WithWaitPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	t.Logf("Waiter: %v", w)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := waitAsync(wctx, w)
	if _, err := c.Send(ctx, "MixedCase", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait = %v", err)
	}
}

// A notification sent before the Waiter listened still opens a throttle
// window; a message inserted inside it is found when the window ends.
func TestWaiterCoversThrottleWindowOpenedBeforeIt(t *testing.T) {
	ctx, c, db := notifying(t, "before", 2*time.Second)
	if _, err := c.Send(ctx, "before", json.RawMessage(`{}`)); err != nil { // notifies, nobody listens
		t.Fatal(err)
	}
	if got, err := c.Pop(ctx, "before", 1); err != nil || len(got) != 1 {
		t.Fatalf("Pop = %v, %v", got, err)
	}
	w, err := pgmqclient.NewPoolWaiter(ctx, db.Pool, "before", pgmqclient.WithWaitRecheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := waitAsync(wctx, w)
	if _, err := c.Send(ctx, "before", json.RawMessage(`{}`)); err != nil { // inside the window: no NOTIFY
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait = %v", err)
	}
}
