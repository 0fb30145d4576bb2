package pgmqreceiver

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// collectionOfSDK flattens an OpenTelemetry SDK collection the way
// collectionOf flattens a Collector one.
func collectionOfSDK(rm metricdata.ResourceMetrics) collection {
	out := collection{}
	sum := func(temporality metricdata.Temporality, monotonic bool) string {
		t := pmetric.AggregationTemporalityDelta
		if temporality == metricdata.CumulativeTemporality {
			t = pmetric.AggregationTemporalityCumulative
		}
		return fmt.Sprintf("sum/%s/monotonic=%v", t, monotonic)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			c := out[m.Name]
			c.shape = metricShape{name: m.Name, unit: m.Unit, description: m.Description}
			add := func(s attribute.Set, v float64) { c.points = append(c.points, point{attrs: canonicalSet(s), value: v}) }
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				c.shape.kind = "gauge"
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Gauge[float64]:
				c.shape.kind = "gauge"
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			case metricdata.Sum[int64]:
				c.shape.kind = sum(d.Temporality, d.IsMonotonic)
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			default:
				c.shape.kind = fmt.Sprintf("%T", d)
			}
			slices.SortFunc(c.points, func(a, b point) int { return strings.Compare(a.attrs, b.attrs) })
			out[m.Name] = c
		}
	}
	return out
}

// canonicalSet writes an attribute set as canonicalAttrs writes a
// pcommon.Map.
func canonicalSet(s attribute.Set) string {
	var kv []string
	for _, a := range s.ToSlice() {
		typ := map[attribute.Type]string{attribute.STRING: "Str", attribute.INT64: "Int", attribute.FLOAT64: "Double", attribute.BOOL: "Bool"}[a.Value.Type()]
		v := a.Value.AsString()
		if a.Value.Type() == attribute.INT64 {
			v = strconv.FormatInt(a.Value.AsInt64(), 10)
		}
		kv = append(kv, string(a.Key)+"="+typ+":"+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// fillCompared prepares a database for the comparison: orders with 5
// messages (2 in flight), an empty queue, and a queue of 40 messages above
// the exact-count threshold of 10, analyzed so its estimate is stable.
func fillCompared(t *testing.T, db *pgmqtest.DB) {
	t.Helper()
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"orders", "idle", "deep"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "orders", 5)
	if msgs, err := c.Read(ctx, "orders", time.Hour, 2); err != nil || len(msgs) != 2 {
		t.Fatalf("read: %d, %v", len(msgs), err)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT pgmq.send('deep', jsonb_build_object('n', g)) FROM generate_series(1, 40) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE pgmq.q_deep`); err != nil {
		t.Fatal(err)
	}
}

// The receiver and package otelmetrics, sampling the same three databases
// (two with the same queue names, one unreachable), emit the same metrics:
// names, units, descriptions, kinds, attribute sets and values (the
// oldest message's age within the seconds between the two samples).
func TestReceiverMatchesInProcessSampler(t *testing.T) {
	ctx := context.Background()
	cluster := pgcluster.Start(t, pgcluster.Options{})
	dbs := []*pgmqtest.DB{pgmqtest.New(t), pgmqtest.NewAt(t, cluster.URL(""))}
	for _, db := range dbs {
		fillCompared(t, db)
	}
	dsns := []string{dbs[0].URL, dbs[1].URL, closedDSN(t)}
	const threshold = 10

	// In process: one sampler per database, as an application configures
	// them. No election, so neither side waits for the other's lease.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(ctx) })
	opts := []otelmetrics.Option{otelmetrics.WithMeterProvider(mp)}
	for _, dsn := range dsns {
		pc, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, otelmetrics.WithQueueSampler(queuesampler.Config{Conn: pc, NoElection: true, MinInterval: -1,
			Depth: queuedepth.Options{ExactCountThreshold: threshold}, OnError: func(error) {}}))
	}
	m, err := otelmetrics.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	want := collectionOfSDK(rm)

	// The receiver's scraper, one scrape.
	cfg := testConfig(dsns...)
	cfg.Election.Enabled = false
	for i := range cfg.Databases {
		cfg.Databases[i].ExactCountThreshold = threshold
	}
	s := newScraper(cfg, receivertest.NewNopSettings(metadata.Type))
	if err := s.start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.shutdown(ctx) })
	md, err := s.scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := collectionOf(md)

	// The comparison covers every kind of point.
	for _, mustHave := range []struct{ metric, attr string }{
		{"pgmq.queue.depth", str("pgmq.depth.method", "estimate")},
		{"pgmq.queue.depth", str("pgmq.message.state", "invisible")},
		{"pgmq.sampler.errors", str("error.type", "connection")},
	} {
		if _, ok := want.value(mustHave.metric, mustHave.attr); !ok {
			t.Fatalf("otelmetrics has no %s point with %s: %+v", mustHave.metric, mustHave.attr, want[mustHave.metric])
		}
	}
	var names []string
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) != 4 || len(got) != len(want) {
		t.Fatalf("metrics: otelmetrics %v, receiver %d", names, len(got))
	}
	for _, name := range names {
		w, g := want[name], got[name]
		if g.shape != w.shape {
			t.Errorf("%s: receiver %+v, otelmetrics %+v", name, g.shape, w.shape)
		}
		if len(g.points) != len(w.points) {
			t.Errorf("%s: receiver %d points, otelmetrics %d:\n%v\n%v", name, len(g.points), len(w.points), g.points, w.points)
			continue
		}
		for i := range w.points {
			tolerance := 0.0
			if name == "pgmq.queue.oldest_message.age" {
				tolerance = 5
			}
			if g.points[i].attrs != w.points[i].attrs || math.Abs(g.points[i].value-w.points[i].value) > tolerance {
				t.Errorf("%s point %d: receiver %+v, otelmetrics %+v", name, i, g.points[i], w.points[i])
			}
		}
	}
	t.Logf("compared %d depth points, %d age, %d sent, %d error points", len(want["pgmq.queue.depth"].points),
		len(want["pgmq.queue.oldest_message.age"].points), len(want["pgmq.queue.sent.messages"].points), len(want["pgmq.sampler.errors"].points))
}
