package queuedepth_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// The depth sampler on the kinds of queue newer PGMQ releases make: with
// a FIFO index, bound to topics and fed through them, and partitioned.
// Queues the installed PGMQ cannot make are left out (their operations'
// own tests check the ErrUnsupported).
func TestSampleDepthsNewerQueueKinds(t *testing.T) {
	ctx, c, db := setup(t, "plain")
	cs := caps(t, ctx, c)
	want := map[string]int64{"plain": 30}
	sendN(t, ctx, c, "plain", 30)

	if cs.Has(pgmqclient.FeatureFIFOIndex) {
		if err := c.CreateQueue(ctx, "fifo_idx"); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateFIFOIndex(ctx, "fifo_idx"); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if _, err := c.Send(ctx, "fifo_idx", json.RawMessage(`{}`), pgmqclient.WithGroup([]string{"a", "b", "c"}[i%3])); err != nil {
				t.Fatal(err)
			}
		}
		want["fifo_idx"] = 30
	}
	if cs.Has(pgmqclient.FeatureTopics) {
		if err := c.CreateQueue(ctx, "topic_bound"); err != nil {
			t.Fatal(err)
		}
		if err := c.BindTopic(ctx, "events.#", "topic_bound"); err != nil {
			t.Fatal(err)
		}
		for range 30 {
			if n, err := c.SendTopic(ctx, "events.x", json.RawMessage(`{}`)); err != nil || n != 1 {
				t.Fatalf("SendTopic = %d, %v", n, err)
			}
		}
		want["topic_bound"] = 30
	}
	partitioned := cs.Has(pgmqclient.FeaturePartitioned)
	if partitioned {
		db.InstallPartman(t)
		if err := c.CreatePartitioned(ctx, "parted", pgmqclient.WithPartitionInterval("10"), pgmqclient.WithRetentionInterval("1000")); err != nil {
			t.Fatal(err)
		}
		sendN(t, ctx, c, "parted", 30) // three partitions and the default one
		want["parted"] = 30
	}
	// Ten of each in flight.
	for q := range want {
		if got, err := c.Read(ctx, q, time.Hour, 10); err != nil || len(got) != 10 {
			t.Fatalf("Read(%s) = %d, %v", q, len(got), err)
		}
	}

	depths, err := sampleDepths(ctx, c, queuedepth.Options{})
	if err != nil {
		t.Fatalf("SampleDepths: %v", err)
	}
	if len(depths) != len(want) {
		t.Fatalf("sampled %d queues (%+v), want %d", len(depths), depths, len(want))
	}
	for _, d := range depths {
		if d.Depth != want[d.Name] || d.Invisible != 10 || d.Visible != want[d.Name]-10 || d.Estimated() || d.TotalSent < want[d.Name] {
			t.Errorf("%s: %+v; want depth %d exactly, 10 invisible", d.Name, d, want[d.Name])
		}
	}

	if !partitioned {
		return
	}
	// Above the exact-count threshold the depth of a partitioned queue
	// comes from its partitions (the partitioned parent has no statistics
	// of its own): the sampler answers without error and within 1 % of the
	// 100 messages held, 10 of them in flight.
	sendN(t, ctx, c, "parted", 70)
	s, err := newSampler(db.Pool, queuedepth.Options{Queues: []string{"parted"}, ExactCountThreshold: 20})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sample(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("Sample of a partitioned queue above the threshold = %+v, %v", got, err)
	}
	d := got[0]
	t.Logf("partitioned queue holding 100 messages, threshold 20: %+v", d)
	if d.Err != nil || d.Depth < 99 || d.Depth > 101 || d.Visible+d.Invisible != d.Depth || d.Invisible < 9 || d.Invisible > 11 {
		t.Errorf("partitioned queue: %+v; want a depth of 100 within 1 %%, 10 invisible", d)
	}
}
