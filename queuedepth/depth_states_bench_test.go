package queuedepth_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// BenchmarkDepthEstimateStates measures the estimate's error on three
// queues of 1,000,000 messages, split visible/invisible 100/0, 50/50 and
// 0/100 (delayed), at the default threshold, in every state of the
// statistics: current, after a crash restart, after pg_stat_reset(), on a
// hot standby and on the promoted standby. It reports the largest error of
// a state's figure, in percent of the queue's depth (max_error_%), and how
// many queue samples were left out (left_out) rather than estimated.
func BenchmarkDepthEstimateStates(b *testing.B) {
	const n = 1_000_000
	primary := pgcluster.Start(b, pgcluster.Options{Settings: map[string]string{"autovacuum": "off"}})
	db := pgmqtest.NewAt(b, primary.URL(""))
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for q, vt := range map[string]string{
		"split_100_0": `now() - interval '1 second'`,
		"split_50_50": `CASE WHEN g % 2 = 0 THEN now() - interval '1 second' ELSE now() + interval '1 hour' END`,
		"split_0_100": `now() + interval '1 hour'`,
	} {
		if err := c.CreateQueue(ctx, q); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{"pgmq", "q_" + q}.Sanitize()+` (vt, message)
			SELECT `+vt+`, jsonb_build_object('i', g) FROM generate_series(1, $1::int) AS g`, n); err != nil {
			b.Fatal(err)
		}
	}
	waitForStatistics(b, db, "split_100_0", "split_50_50", "split_0_100")
	analyze(b, db, "split_100_0", "split_50_50", "split_0_100")
	db.Pool.Close()
	url := primary.URL(db.Name)

	var (
		maxErr  float64
		leftOut int
	)
	measure := func(stage, url string) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		s, err := newSampler(conn, queuedepth.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ds, err := s.Sample(ctx)
		if err != nil {
			b.Fatalf("%s: %v", stage, err)
		}
		for _, d := range ds {
			var vis, inv int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE vt <= now()), count(*) FILTER (WHERE vt > now()) FROM `+
				pgx.Identifier{"pgmq", "q_" + d.Name}.Sanitize()).Scan(&vis, &inv); err != nil {
				b.Fatal(err)
			}
			if d.Err != nil {
				leftOut++
				fmt.Printf("    %s: %s left out: %v\n", stage, d.Name, d.Err)
				continue
			}
			depth := float64(vis + inv)
			ev := 100 * math.Abs(float64(d.Visible-vis)) / depth
			ei := 100 * math.Abs(float64(d.Invisible-inv)) / depth
			maxErr = max(maxErr, ev, ei)
			// Printed, not logged: a benchmark's log is cut to a few lines.
			fmt.Printf("    %s: %s visible %d (%s, truth %d, %.3f%%) invisible %d (%s, truth %d, %.3f%%) source %s\n",
				stage, d.Name, d.Visible, d.VisibleMethod, vis, ev, d.Invisible, d.InvisibleMethod, inv, ei, d.Source)
		}
	}

	for b.Loop() {
		measure("current statistics", url)
		primary.Restart(b, "immediate")
		measure("after a crash restart", url)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT pg_stat_reset()`); err != nil {
			b.Fatal(err)
		}
		_, _ = conn.Exec(ctx, "CHECKPOINT")
		conn.Close(ctx)
		measure("after pg_stat_reset()", url)
		standby := primary.Standby(b, pgcluster.Options{})
		standby.WaitReplayed(b, primary)
		measure("on a hot standby", standby.URL(db.Name))
		standby.Promote(b)
		measure("on the promoted standby", standby.URL(db.Name))
	}
	b.ReportMetric(maxErr, "max_error_%")
	b.ReportMetric(float64(leftOut), "left_out")
}
