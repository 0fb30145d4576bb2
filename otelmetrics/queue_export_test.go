package otelmetrics

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Each depth point says how it was obtained: a queue above the threshold
// exports its visible depth as an estimate and its invisible depth,
// counted, as a count.
func TestDepthMethodAttribute(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"small", "deep"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "small", 3)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO pgmq.q_deep (vt, message) SELECT now(), '{}' FROM generate_series(1, 20000)`); err != nil {
		t.Fatal(err)
	}
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{ExactCountThreshold: 100}, MinInterval: -1}))
	got := collect(t, r)
	method := func(m string) attribute.KeyValue { return attribute.String(AttrDepthMethod, m) }
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("small"), visible, method(DepthMethodCount)); v != 3 {
		t.Errorf("small visible = %v, want 3 counted", v)
	}
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("deep"), visible, method(DepthMethodEstimate)); v < 19_800 || v > 20_200 {
		t.Errorf("deep visible = %v, want about 20,000, estimated", v)
	}
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("deep"), invisible, method(DepthMethodCount)); v != 0 {
		t.Errorf("deep invisible = %v, want 0 counted", v)
	}
}

// Finding 7: a queue named in WithQueueSampling that does not exist is
// reported once through otel.Handle and in the snapshot; the others are
// reported.
func TestMissingNamedQueueReportedOnce(t *testing.T) {
	h := setErrorHandler(t)
	db := pgmqtest.New(t)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "real"); err != nil {
		t.Fatal(err)
	}
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{Queues: []string{"real", "ghost"}}, MinInterval: -1}))
	for range 3 {
		got := collect(t, r)
		if _, ok := got.value(MetricQueueDepth, queueAttr("real"), visible); !ok {
			t.Fatal("the existing queue is not reported")
		}
		if _, ok := got.value(MetricQueueDepth, queueAttr("ghost"), visible); ok {
			t.Fatal("the missing queue has a depth")
		}
	}
	if n := h.count(); n != 1 || !strings.Contains(h.errs[0].Error(), "ghost") {
		t.Fatalf("otel.Handle got %d errors (%v), want one about ghost", n, h.errs)
	}
	snap := m.Snapshot(ctx)
	if q, ok := snap.Databases[0].Queues["ghost"]; !ok || !strings.Contains(q.Error, "not found") {
		t.Fatalf("snapshot of ghost: %+v (present %v), want an error", q, ok)
	}
}

// With a provider whose limit the queues would pass, New's sampler warns
// once through otel.Handle.
func TestCardinalityWarning(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for i := range 3 {
		if err := c.CreateQueue(ctx, fmt.Sprintf("card_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// 3 queues, 6 depth points: the SDK keeps limit-1 attribute sets and
	// folds the rest into an overflow point, so a limit of 7 holds them and
	// one of 6 does not. The warning comes exactly when points are lost.
	for _, tc := range []struct {
		limit    int
		overflow bool
	}{{7, false}, {6, true}} {
		h := setErrorHandler(t)
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(tc.limit))
		m, err := New(WithMeterProvider(mp), WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}), WithDeclaredCardinalityLimit(tc.limit))
		if err != nil {
			t.Fatal(err)
		}
		collect(t, reader)
		got := collect(t, reader)
		overflow := false
		for _, p := range got.points(MetricQueueDepth) {
			if v, ok := p.attrs.Value("otel.metric.overflow"); ok && v.AsBool() {
				overflow = true
			}
		}
		warned := h.count() == 1 && strings.Contains(h.errs[0].Error(), fmt.Sprintf("cardinality limit of %d", tc.limit))
		if overflow != tc.overflow || warned != tc.overflow || h.count() > 1 {
			t.Errorf("limit %d: overflow point %v, warned %v (%v); want both %v", tc.limit, overflow, warned, h.errs, tc.overflow)
		}
		_ = m.Close()
		_ = mp.Shutdown(ctx)
	}
}

// Include and exclude patterns select the sampled queues; a bad pattern
// fails New before any SQL.
func TestQueuePatterns(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"orders_eu", "orders_tmp", "billing"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{Include: []string{"orders_*"}, Exclude: []string{"*_TMP"}}, MinInterval: -1}))
	got := collect(t, r)
	var queues []string
	for _, p := range got.points(MetricQueueDepth) {
		if v, ok := p.attrs.Value(AttrDestinationName); ok && p.attrs.HasValue(AttrMessageState) {
			if st, _ := p.attrs.Value(AttrMessageState); st.AsString() == "visible" {
				queues = append(queues, v.AsString())
			}
		}
	}
	if fmt.Sprint(queues) != "[orders_eu]" {
		t.Fatalf("sampled %v, want [orders_eu]", queues)
	}
	if _, err := New(WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{Include: []string{"["}}})); err == nil {
		t.Fatal("New accepted the pattern \"[\"")
	}
}
