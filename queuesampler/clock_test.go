package queuesampler_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Under a steady stream of sends to a queue that is never read (no delay,
// so nothing is in flight), every sample reports invisible 0, directly,
// behind a transaction pooler and in the simple protocol. Before, counts
// compared vt with now(), the start of the sampler's transaction, while
// PGMQ stamps vt with clock_timestamp() at send: a message committed after
// the transaction began read as in flight (up to 132 of them in a sample
// on PGMQ 1.5.1's SQL).
func TestInvisibleStaysZeroUnderSends(t *testing.T) {
	for _, tc := range []struct{ name, via, params string }{
		{"direct", "direct", ""},
		{"pooler", "pooler", "default_query_exec_mode=exec"},
		{"simple protocol", "pooler", "default_query_exec_mode=simple_protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBounced(t, nil)
			ctx := context.Background()
			if err := b.client.CreateQueue(ctx, "stream"); err != nil {
				t.Fatal(err)
			}
			dsn := b.db.URL
			if tc.via == "pooler" {
				dsn = b.dsn(tc.params)
			}
			s := newSampler(t, dsn, queuesampler.Config{})
			sendCtx, stop := context.WithTimeout(ctx, time.Minute)
			defer stop()
			var sent atomic.Int64
			var wg sync.WaitGroup
			batch := make([]json.RawMessage, 20)
			for i := range batch {
				batch[i] = json.RawMessage(`{}`)
			}
			for range 3 {
				wg.Go(func() {
					for sendCtx.Err() == nil {
						if ids, err := b.client.SendBatch(sendCtx, "stream", batch); err == nil {
							sent.Add(int64(len(ids)))
						}
					}
				})
			}
			const samples = 300
			bad := 0
			var worst int64
			for range samples {
				q := get(t, s).Queues[0]
				if q.Err != nil {
					t.Fatalf("sample: %v", q.Err)
				}
				if q.Invisible != 0 {
					bad++
					worst = max(worst, q.Invisible)
				}
			}
			stop()
			wg.Wait()
			t.Logf("%d samples while %d messages were sent", samples, sent.Load())
			if bad > 0 {
				t.Fatalf("%d of %d samples reported invisible messages (at most %d) in a queue never read", bad, samples, worst)
			}
		})
	}
}
