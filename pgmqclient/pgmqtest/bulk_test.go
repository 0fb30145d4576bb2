package pgmqtest

import (
	"context"
	"testing"
)

func TestCreateQueues(t *testing.T) {
	db := New(t)
	names := db.CreateQueues(t, "bulk_", 203, func(i int) int { return i % 6 })
	if len(names) != 203 || names[202] != "bulk_202" {
		t.Fatalf("names %v...", names[:3])
	}
	var queues, messages int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pgmq.meta WHERE queue_name LIKE 'bulk\_%'`).Scan(&queues); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name string
		want int
	}{{"bulk_0", 0}, {"bulk_5", 5}, {"bulk_201", 3}} {
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pgmq.q_`+q.name).Scan(&messages); err != nil || messages != q.want {
			t.Fatalf("%s: %d messages, %v; want %d", q.name, messages, err, q.want)
		}
	}
	if queues != 203 {
		t.Fatalf("%d queues", queues)
	}
}
