package queuedepth_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// truthOf counts a queue's visible and invisible messages on url.
func truthOf(t *testing.T, conn *pgx.Conn, queue string) (vis, inv int64) {
	t.Helper()
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE vt <= now()), count(*) FILTER (WHERE vt > now()) FROM `+pgx.Identifier{"pgmq", "q_" + queue}.Sanitize()).Scan(&vis, &inv); err != nil {
		t.Fatal(err)
	}
	return vis, inv
}

// within1 reports whether got is within 1 % of the depth of the truth.
func within1(got, want, depth int64) bool {
	return math.Abs(float64(got-want)) <= float64(depth)/100
}

// Finding 1 (and 2, 7): in every state of the statistics (current, lost
// in a crash restart, reset by pg_stat_reset(), never analyzed, on a hot
// standby, on a promoted standby) each state of a queue deeper than the
// threshold is within 1 % of the truth, and a state at or below it is
// exact; sent.messages is left out on the standby and never goes back.
func TestSampleDepthsStatisticsStates(t *testing.T) {
	const (
		threshold = 1000
		n         = 30_000
	)
	primary := pgcluster.Start(t, pgcluster.Options{Settings: map[string]string{"autovacuum": "off"}})
	db := pgmqtest.NewAt(t, primary.URL(""))
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"vis", "inv", "half", "fresh"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	fillQueue(t, db, "vis", n)
	fillInvisible(t, db, "inv", n)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO pgmq.q_half (vt, message)
		SELECT CASE WHEN g % 2 = 0 THEN now() - interval '1 second' ELSE now() + interval '1 hour' END, '{}'
		FROM generate_series(1, $1::int) AS g`, 100_000); err != nil { // more ids than the split's sample looks up
		t.Fatal(err)
	}
	fillQueue(t, db, "fresh", 20_000) // never analyzed: autovacuum is off
	// Unlogged: emptied by a crash restart and a promotion, unreadable on
	// a standby (whose empty file once read as an empty queue), its sent
	// total never reported (its sequence starts again with the table).
	if err := c.CreateUnloggedQueue(ctx, "ulog"); err != nil {
		t.Fatal(err)
	}
	fillQueue(t, db, "ulog", 500)
	waitForStatistics(t, db, "vis", "inv", "half", "fresh")
	analyze(t, db, "vis", "inv", "half")
	db.Pool.Close() // the crash restart below breaks its connections

	var lastSent int64
	check := func(stage, url string, standby bool) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		defer conn.Close(ctx)
		s, err := newSampler(conn, queuedepth.Options{ExactCountThreshold: threshold})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.Sample(ctx)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		for _, d := range ds {
			if d.Name == "ulog" {
				if d.TotalSentKnown {
					t.Errorf("%s: ulog: sent %d reported for an unlogged queue", stage, d.TotalSent)
				}
				if standby {
					if !errors.Is(d.Err, queuedepth.ErrUnloggedOnStandby) {
						t.Errorf("%s: ulog: %+v, want ErrUnloggedOnStandby", stage, d)
					}
					continue
				}
			}
			vis, inv := truthOf(t, conn, d.Name)
			if d.Err != nil {
				t.Errorf("%s: %s: %v (truth %d visible, %d invisible)", stage, d.Name, d.Err, vis, inv)
				continue
			}
			depth := vis + inv
			t.Logf("%s: %s: visible %d (%s, truth %d), invisible %d (%s, truth %d), source %s",
				stage, d.Name, d.Visible, d.VisibleMethod, vis, d.Invisible, d.InvisibleMethod, inv, d.Source)
			if !within1(d.Visible, vis, depth) || !within1(d.Invisible, inv, depth) {
				t.Errorf("%s: %s: visible %d, invisible %d; truth %d, %d: not within 1%% of %d",
					stage, d.Name, d.Visible, d.Invisible, vis, inv, depth)
			}
			// Counted when at or below the threshold; a count is exact.
			if (vis <= threshold && d.VisibleMethod != queuedepth.MethodCount) || (d.VisibleMethod == queuedepth.MethodCount && d.Visible != vis) {
				t.Errorf("%s: %s: visible %d %s, truth %d", stage, d.Name, d.Visible, d.VisibleMethod, vis)
			}
			if (inv <= threshold && d.InvisibleMethod != queuedepth.MethodCount) || (d.InvisibleMethod == queuedepth.MethodCount && d.Invisible != inv) {
				t.Errorf("%s: %s: invisible %d %s, truth %d", stage, d.Name, d.Invisible, d.InvisibleMethod, inv)
			}
			if d.Name == "vis" {
				switch {
				case standby && d.TotalSentKnown:
					t.Errorf("%s: sent %d reported on a standby", stage, d.TotalSent)
				case !standby && (!d.TotalSentKnown || d.TotalSent < lastSent):
					t.Errorf("%s: sent %d (known %v), want at least %d", stage, d.TotalSent, d.TotalSentKnown, lastSent)
				case !standby:
					lastSent = d.TotalSent
				}
			}
		}
		if len(ds) != 5 {
			t.Errorf("%s: %d queues sampled, want 5", stage, len(ds))
		}
	}

	url := primary.URL(db.Name)
	check("current statistics", url, false)
	primary.Restart(t, "immediate")
	check("after a crash restart", url, false)

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`SELECT pg_stat_reset()`,
		`INSERT INTO pgmq.q_vis (vt, message) SELECT now() - interval '1 second', '{}' FROM generate_series(1, 2000)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	check("after pg_stat_reset() and 2,000 more messages", url, false)

	// A checkpoint now leaves pg_basebackup's own (spread) checkpoint little to write.
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_, _ = conn.Exec(ctx, "CHECKPOINT")
		conn.Close(ctx)
	}
	standby := primary.Standby(t, pgcluster.Options{})
	standby.WaitReplayed(t, primary)
	check("on a hot standby", standby.URL(db.Name), true)
	standby.Promote(t)
	check("on the promoted standby", standby.URL(db.Name), false)
}
