package pgmqclient_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

func TestCreatePartitioned(t *testing.T) {
	ctx, c, db := setup(t)
	if !caps(t, ctx, c).Has(pgmqclient.FeaturePartitioned) {
		wantUnsupported(t, c.CreatePartitioned(ctx, "parts"), "create partitioned", pgmqclient.FeaturePartitioned)
		return
	}
	if err := c.CreatePartitioned(ctx, "parts"); !errors.Is(err, pgmqclient.ErrPartmanMissing) {
		t.Fatalf("CreatePartitioned without pg_partman = %v, want ErrPartmanMissing", err)
	}
	db.InstallPartman(t)
	if err := c.CreatePartitioned(ctx, "parts", pgmqclient.WithPartitionInterval("100"), pgmqclient.WithRetentionInterval("1000")); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePartitioned(ctx, "tparts", pgmqclient.WithPartitionInterval("1 day"), pgmqclient.WithRetentionInterval("7 days")); err != nil {
		t.Fatal(err)
	}
	err := c.CreatePartitioned(ctx, "premade", pgmqclient.WithPremake(2))
	if caps(t, ctx, c).HasFunction("create_partitioned", "text", "text", "text", "integer") {
		if err != nil {
			t.Fatalf("CreatePartitioned with premake: %v", err)
		}
		if _, err := c.DropQueue(ctx, "premade"); err != nil {
			t.Fatal(err)
		}
	} else {
		wantUnsupported(t, err, "create partitioned", pgmqclient.FeaturePartitioned)
	}
	queues, err := c.ListQueues(ctx)
	if err != nil || len(queues) != 2 || !queues[0].IsPartitioned || !queues[1].IsPartitioned {
		t.Fatalf("ListQueues = %+v, %v; want two partitioned queues", queues, err)
	}
	var kind string
	if err := db.Pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE oid = 'pgmq.q_parts'::regclass`).Scan(&kind); err != nil || kind != "p" {
		t.Fatalf("pgmq.q_parts relkind = %q, %v; want p (partitioned)", kind, err)
	}
	for _, q := range []string{"parts", "tparts"} {
		sent := sendN(t, ctx, c, q, 250) // spans three partitions of 100 ids
		got, err := c.Read(ctx, q, time.Hour, 300)
		if err != nil || !slices.Equal(ids(got), sent) {
			t.Fatalf("%s: Read = %d messages, %v; want the 250 sent", q, len(got), err)
		}
		if done, err := c.ArchiveBatch(ctx, q, sent[:10]); err != nil || len(done) != 10 {
			t.Fatalf("%s: ArchiveBatch = %v, %v", q, done, err)
		}
		if n := size(t, ctx, c, q); n != 240 {
			t.Errorf("%s: size = %d, want 240", q, n)
		}
		if m, err := c.Metrics(ctx, q); err != nil || m.Length != 240 {
			t.Errorf("%s: Metrics = %+v, %v", q, m, err)
		}
	}
	if ok, err := c.DropQueue(ctx, "parts"); err != nil || !ok {
		t.Fatalf("DropQueue of a partitioned queue = %v, %v", ok, err)
	}
}

func TestConvertArchivePartitioned(t *testing.T) {
	ctx, c, db := setup(t, "arch")
	if !caps(t, ctx, c).Has(pgmqclient.FeatureConvertArchivePartitioned) {
		wantUnsupported(t, c.ConvertArchivePartitioned(ctx, "arch"), "convert archive partitioned", pgmqclient.FeatureConvertArchivePartitioned)
		return
	}
	if err := c.ConvertArchivePartitioned(ctx, "arch"); !errors.Is(err, pgmqclient.ErrPartmanMissing) {
		t.Fatalf("ConvertArchivePartitioned without pg_partman = %v, want ErrPartmanMissing", err)
	}
	db.InstallPartman(t)
	sent := sendN(t, ctx, c, "arch", 5)
	if _, err := c.ArchiveBatch(ctx, "arch", sent[:2]); err != nil {
		t.Fatal(err)
	}
	if err := c.ConvertArchivePartitioned(ctx, "arch", pgmqclient.WithPartitionInterval("1000"),
		pgmqclient.WithRetentionInterval("100000"), pgmqclient.WithLeadingPartition(2)); err != nil {
		t.Fatal(err)
	}
	var kind string
	if err := db.Pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE oid = 'pgmq.a_arch'::regclass`).Scan(&kind); err != nil || kind != "p" {
		t.Fatalf("pgmq.a_arch relkind = %q, %v; want p (partitioned)", kind, err)
	}
	var old int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.a_arch_old`).Scan(&old); err != nil || old != 2 {
		t.Fatalf("old archive holds %d rows, %v; want the 2 archived before", old, err)
	}
	if done, err := c.ArchiveBatch(ctx, "arch", sent[2:]); err != nil || len(done) != 3 {
		t.Fatalf("ArchiveBatch into the partitioned archive = %v, %v", done, err)
	}
	// Converting again is a no-op.
	if err := c.ConvertArchivePartitioned(ctx, "arch"); err != nil {
		t.Fatalf("second ConvertArchivePartitioned: %v", err)
	}
}

func TestPartitionArgsRefusedBeforeSQL(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	checks := map[string]error{
		"bad interval":     c.CreatePartitioned(ctx, "q", pgmqclient.WithPartitionInterval("soon")),
		"zero interval":    c.CreatePartitioned(ctx, "q", pgmqclient.WithPartitionInterval("0")),
		"mixed kinds":      c.CreatePartitioned(ctx, "q", pgmqclient.WithPartitionInterval("1 day")),
		"bad retention":    c.CreatePartitioned(ctx, "q", pgmqclient.WithRetentionInterval("1; DROP")),
		"premake 0":        c.CreatePartitioned(ctx, "q", pgmqclient.WithPremake(0)),
		"leading on queue": c.CreatePartitioned(ctx, "q", pgmqclient.WithLeadingPartition(3)),
		"premake on conv":  c.ConvertArchivePartitioned(ctx, "q", pgmqclient.WithPremake(3)),
		"leading 0":        c.ConvertArchivePartitioned(ctx, "q", pgmqclient.WithLeadingPartition(0)),
		"bad name":         c.ConvertArchivePartitioned(ctx, "q--q"),
	}
	for name, err := range checks {
		if !errors.Is(err, pgmqclient.ErrInvalidArgument) && !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
			t.Errorf("%s: %v, want a refused argument", name, err)
		}
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("%d statements sent for refused arguments", n)
	}
}
