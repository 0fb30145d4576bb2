package pgmqclient_test

import (
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Rows are mapped by column name, so the client reads every shape PGMQ's
// result types had: fewer columns (1.5), more columns (later releases),
// any order.
func TestMessageShapes(t *testing.T) {
	ctx, _, db := setup(t)
	for name, sql := range map[string]string{
		"1.5 (no last_read_at)": `SELECT 7::bigint AS msg_id, 2 AS read_ct, now() AS enqueued_at,
			now() + interval '1 minute' AS vt, '{"a":1}'::jsonb AS message, NULL::jsonb AS headers`,
		"newer": `SELECT 7::bigint AS msg_id, 2 AS read_ct, now() AS enqueued_at, now() AS last_read_at,
			now() + interval '1 minute' AS vt, '{"a":1}'::jsonb AS message, NULL::jsonb AS headers`,
		"future (extra column, reordered)": `SELECT '{"a":1}'::jsonb AS message, 'x' AS some_new_column, now() AS last_read_at,
			7::bigint AS msg_id, now() + interval '1 minute' AS vt, 2 AS read_ct, now() AS enqueued_at, NULL::jsonb AS headers`,
	} {
		rows, err := db.Pool.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := pgmqclient.ScanMessages(rows)
		if err != nil || len(msgs) != 1 {
			t.Errorf("%s: %v, %v", name, msgs, err)
			continue
		}
		m := msgs[0]
		if m.ID != 7 || m.ReadCount != 2 || !jsonEqual(t, m.Payload, []byte(`{"a":1}`)) || m.Headers != nil ||
			m.VisibleAt.Sub(m.EnqueuedAt) != time.Minute {
			t.Errorf("%s: %+v", name, m)
		}
		if (m.LastReadAt == nil) != (name == "1.5 (no last_read_at)") {
			t.Errorf("%s: LastReadAt = %v", name, m.LastReadAt)
		}
	}
	rows, err := db.Pool.Query(ctx, `SELECT 1 AS unrelated`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgmqclient.ScanMessages(rows); err == nil {
		t.Error("a result without msg_id was accepted")
	}
}

func TestMetricsShapes(t *testing.T) {
	ctx, c, _ := setup(t)
	const base = `'q'::text AS queue_name, 5::bigint AS queue_length, 1 AS newest_msg_age_sec,
		3 AS oldest_msg_age_sec, 9::bigint AS total_messages, now() AS scrape_time`
	for name, tc := range map[string]struct {
		sql     string
		visible int64
	}{
		"without queue_visible_length": {`SELECT ` + base, 0},
		"with queue_visible_length":    {`SELECT ` + base + `, 4::bigint AS queue_visible_length`, 4},
		// pgmq--1.12.0--1.12.1.sql appends default_partition_length.
		"with default_partition_length": {`SELECT ` + base + `, 4::bigint AS queue_visible_length, 0::bigint AS default_partition_length`, 4},
	} {
		ms, err := pgmqclient.ScanMetrics(ctx, c, tc.sql)
		if err != nil || len(ms) != 1 {
			t.Errorf("%s: %v, %v", name, ms, err)
			continue
		}
		m := ms[0]
		if m.Queue != "q" || m.Length != 5 || m.VisibleLength != tc.visible || m.NewestAge != time.Second ||
			m.OldestAge != 3*time.Second || m.TotalMessages != 9 || m.ScrapeTime.IsZero() {
			t.Errorf("%s: %+v", name, m)
		}
	}
	// Ages are NULL for an empty queue.
	ms, err := pgmqclient.ScanMetrics(ctx, c, `SELECT 'e'::text AS queue_name, 0::bigint AS queue_length,
		NULL::int AS newest_msg_age_sec, NULL::int AS oldest_msg_age_sec, 0::bigint AS total_messages, now() AS scrape_time`)
	if err != nil || len(ms) != 1 || ms[0].NewestAge != 0 || ms[0].OldestAge != 0 {
		t.Errorf("NULL ages: %+v, %v", ms, err)
	}
}
