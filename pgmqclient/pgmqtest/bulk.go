package pgmqtest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// CreateQueues creates the queues prefix0 to prefix<n-1> and sends
// messages(i) messages to queue i, for tests and benchmarks at scale: 200
// queues per statement (each creation locks its new tables until commit,
// and a transaction holds only so many locks), their messages in one
// send_batch each. messages may be nil (every queue empty). It returns the
// queue names.
func (db *DB) CreateQueues(tb testing.TB, prefix string, n int, messages func(i int) int) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	const chunk = 200
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		if _, err := db.Pool.Exec(ctx, `SELECT pgmq.create(q) FROM unnest($1::text[]) AS q`, names[lo:hi]); err != nil {
			tb.Fatalf("pgmqtest: create queues %s..%s: %v", names[lo], names[hi-1], err)
		}
		if messages == nil {
			continue
		}
		var qs []string
		var counts []int32
		for i := lo; i < hi; i++ {
			if c := messages(i); c > 0 {
				qs, counts = append(qs, names[i]), append(counts, int32(c))
			}
		}
		if len(qs) == 0 {
			continue
		}
		if _, err := db.Pool.Exec(ctx, `SELECT pgmq.send_batch(q, array_fill('{}'::jsonb, ARRAY[c])) FROM unnest($1::text[], $2::int[]) AS t(q, c)`,
			qs, counts); err != nil {
			tb.Fatalf("pgmqtest: fill queues %s..%s: %v", names[lo], names[hi-1], err)
		}
	}
	return names
}
