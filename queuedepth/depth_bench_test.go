package queuedepth_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// BenchmarkQueueSampling compares one DepthSampler sample with PGMQ's own
// metrics_all() on 10 queues holding 1,000,000 messages in total, in the
// same run. Every tenth message is deleted out of order, so the id span
// overestimates and the estimate rests on the table statistics. The
// sample_depths case reports the estimate's error against count(*) once
// the statistics are current and a VACUUM has run, in percent.
func BenchmarkQueueSampling(b *testing.B) {
	const queues, perQueue = 10, 111_111 // 100,000 each after the deletes
	db := pgmqtest.New(b)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	names := make([]string, queues)
	for i := range names {
		names[i] = fmt.Sprintf("bench_%d", i)
		if err := c.CreateQueue(ctx, names[i]); err != nil {
			b.Fatal(err)
		}
		fillQueue(b, db, names[i], perQueue)
		if _, err := db.Pool.Exec(ctx, `DELETE FROM `+pgx.Identifier{"pgmq", "q_" + names[i]}.Sanitize()+` WHERE msg_id % 10 = 0`); err != nil {
			b.Fatal(err)
		}
	}
	waitForStatistics(b, db, names...)
	// As autovacuum would: the statistics' live rows are then re-based,
	// and trusted (see estimateDepth).
	for _, q := range names {
		if _, err := db.Pool.Exec(ctx, "VACUUM "+pgx.Identifier{"pgmq", "q_" + q}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
	var truth int64
	for _, q := range names {
		truth += trueDepth(b, db, q)
	}

	b.Run("metrics_all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ms, err := c.MetricsAll(ctx)
			if err != nil || len(ms) != queues {
				b.Fatalf("metrics_all: %d rows, %v", len(ms), err)
			}
		}
	})
	b.Run("sample_depths", func(b *testing.B) {
		// As otelmetrics does: a dedicated connection whose server keeps one
		// generic plan of the sampling statement.
		cfg, err := pgx.ParseConfig(db.URL)
		if err != nil {
			b.Fatal(err)
		}
		cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		s, err := newSampler(conn, queuedepth.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		var (
			total int64
			last  []queuedepth.Queue
		)
		for b.Loop() {
			ds, err := s.Sample(ctx)
			if err != nil || len(ds) != queues {
				b.Fatalf("sample: %d rows, %v", len(ds), err)
			}
			total, last = 0, ds
			for _, d := range ds {
				total += d.Depth
			}
		}
		if total != truth {
			for _, d := range last {
				b.Logf("%s: depth %d estimated %v, count(*) %d", d.Name, d.Depth, d.Estimated(), trueDepth(b, db, d.Name))
			}
		}
		b.ReportMetric(100*math.Abs(float64(total-truth))/float64(truth), "error_%")
	})
}
