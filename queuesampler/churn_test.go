package queuesampler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Queues dropped and created again back to back while samples run are
// skipped, never counted as sampler errors. Before, a queue dropped while
// the catalog was read failed with XX000 ("could not open relation with
// OID", from the sequence read) and was counted.
func TestDropChurnCountsNoError(t *testing.T) {
	b := newBounced(t, nil)
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	if err := b.client.CreateQueue(ctx, "steady"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			q := fmt.Sprintf("churn_%d", w)
			for ctx.Err() == nil {
				_ = b.client.CreateQueue(ctx, q)
				_, _ = b.client.Send(ctx, q, json.RawMessage(`{}`))
				_, _ = b.client.DropQueue(ctx, q)
			}
		})
	}
	s := newSampler(t, b.db.URL, queuesampler.Config{})
	const samples = 400
	for i := range samples {
		for _, q := range get(t, s).Queues {
			if q.Err != nil {
				t.Fatalf("sample %d: queue %s: %v", i, q.Name, q.Err)
			}
		}
	}
	stop()
	wg.Wait()
	if f := s.Failures(); len(f) != 0 {
		t.Fatalf("failures counted under drop churn: %v", f)
	}
}
