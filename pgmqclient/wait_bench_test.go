package pgmqclient_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// BenchmarkWakeupLatency measures how long a waiting consumer takes to
// wake after a message is sent: from just before Send to the moment the
// consumer knows there is a message. "notify" is a Waiter on a queue with
// insert notifications (throttle 0); "read_with_poll" is ReadWithPoll at
// PGMQ's default poll interval of 100 ms. Sends arrive at phases spread
// evenly over the poll interval (10 ms + i*37 ms mod 100 ms after the
// consumer started waiting), the same schedule for both. Reports the mean
// (wake_ms) and the 95th percentile (wake_p95_ms) in milliseconds; ns/op
// includes the schedule's pauses and means nothing here.
func BenchmarkWakeupLatency(b *testing.B) {
	db := pgmqtest.New(b)
	ctx := b.Context()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "wake"); err != nil {
		b.Fatal(err)
	}
	cs, err := c.Capabilities(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if !cs.Has(pgmqclient.FeatureNotifyInsert) {
		b.Skip("no insert notifications in this PGMQ")
	}
	if err := c.EnableNotifyInsert(ctx, "wake", 0); err != nil {
		b.Fatal(err)
	}
	payload := json.RawMessage(`{}`)
	pause := func(i int) time.Duration { return 10*time.Millisecond + time.Duration(i*37%100)*time.Millisecond }

	// run measures one wake-up per iteration: consume waits for a message
	// and returns when it knows of one, then clears the queue.
	run := func(b *testing.B, consume func() error) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			woke := make(chan error, 1)
			var at time.Time
			go func() {
				err := consume()
				at = time.Now()
				woke <- err
			}()
			time.Sleep(pause(i)) // the arrival schedule, not synchronisation
			i++
			start := time.Now()
			if _, err := c.Send(ctx, "wake", payload); err != nil {
				b.Fatal(err)
			}
			if err := <-woke; err != nil {
				b.Fatal(err)
			}
			lat = append(lat, at.Sub(start))
			if _, err := c.PurgeQueue(ctx, "wake"); err != nil {
				b.Fatal(err)
			}
		}
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(sum/time.Duration(len(lat))), "wake_ms")
		b.ReportMetric(ms(lat[(len(lat)*95+99)/100-1]), "wake_p95_ms")
	}

	b.Run("notify", func(b *testing.B) {
		w, err := pgmqclient.NewPoolWaiter(ctx, db.Pool, "wake")
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close(ctx)
		if !w.Notifications() {
			b.Fatal("the Waiter does not listen")
		}
		run(b, func() error { return w.Wait(ctx) })
	})
	b.Run("read_with_poll", func(b *testing.B) {
		run(b, func() error {
			msgs, err := c.ReadWithPoll(ctx, "wake", time.Minute, 1, 5*time.Second, 100*time.Millisecond)
			if err == nil && len(msgs) != 1 {
				b.Errorf("read_with_poll returned %d messages", len(msgs))
			}
			return err
		})
	})
}
