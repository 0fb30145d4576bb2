package otelmetrics

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// newTracedPool builds a pool of maxConns with tracer as its
// ConnConfig.Tracer (nil for none).
func newTracedPool(t testing.TB, url string, maxConns int32, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// waitPoints returns the db.client.connection.wait_time points.
func waitPoints(t testing.TB, c collected) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := c[MetricConnectionWait]
	if !ok {
		return nil
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, want a float64 histogram", MetricConnectionWait, m.Data)
	}
	return h.DataPoints
}

// holdThenRelease acquires the pool's one connection, starts a second
// acquire that must wait for it, holds the first for at least hold, and
// returns once the second has its connection (released too).
func holdThenRelease(t *testing.T, pool *pgxpool.Pool, hold time.Duration) {
	t.Helper()
	ctx := t.Context()
	first, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() {
		started <- time.Now()
		c, err := pool.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		done <- err
	}()
	time.Sleep(time.Until((<-started).Add(hold))) // the wait being measured
	first.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A PoolTracer in the pool's config feeds db.client.connection.wait_time:
// one point per acquire that obtained a connection, under the pool's name,
// the waiting one in the bucket its wait falls in, the sum at least pgx's
// own count of the time acquires waited. A failed acquire is not recorded,
// nor anything after Close.
func TestPoolWaitTime(t *testing.T) {
	db := pgmqtest.New(t)
	pool := newTracedPool(t, db.URL, 1, NewPoolTracer())
	m, r := newTestMetrics(t, WithPool("waits", pool))
	const hold = 30 * time.Millisecond
	holdThenRelease(t, pool, hold)

	c := collect(t, r)
	pts := waitPoints(t, c)
	if len(pts) != 1 {
		t.Fatalf("%d wait_time points, want 1: %+v", len(pts), pts)
	}
	p := pts[0]
	if name, _ := p.Attributes.Value(AttrPoolName); name.AsString() != "waits" || p.Attributes.Len() != 1 {
		t.Errorf("wait_time attributes %v, want the pool name alone", p.Attributes.ToSlice())
	}
	if p.Count != 2 || !slices.Equal(p.Bounds, ConnectionWaitBuckets) {
		t.Errorf("wait_time count %d bounds %v, want 2 acquires with ConnectionWaitBuckets", p.Count, p.Bounds)
	}
	if longest, ok := p.Max.Value(); !ok || longest < hold.Seconds() || longest > 10 {
		t.Errorf("longest wait %v s, want at least the %v held", longest, hold)
	}
	if waited := pool.Stat().EmptyAcquireWaitTime().Seconds(); p.Sum < waited {
		t.Errorf("wait_time sum %v s, below pgx's own %v s of waiting", p.Sum, waited)
	}
	if got := c.mustValue(t, MetricAcquireWaits, attribute.String(AttrPoolName, "waits")); got < 1 {
		t.Errorf("%s = %v, want the wait counted", MetricAcquireWaits, got)
	}

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := pool.Acquire(cancelled); err == nil {
		t.Fatal("acquire with a cancelled context succeeded")
	}
	if pts := waitPoints(t, collect(t, r)); len(pts) != 1 || pts[0].Count != 2 {
		t.Errorf("after a failed acquire: %+v, want the 2 acquires alone", pts)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn.Release()
	if pts := waitPoints(t, collect(t, r)); len(pts) != 1 || pts[0].Count != 2 {
		t.Errorf("after Close: %+v, want nothing more recorded", pts)
	}
}

// wrappingTracer is another application's pool tracer: it wraps the
// context it is given and counts the acquires it sees end.
type wrappingTracer struct{ ends int }

type wrapKey struct{}

func (w *wrappingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (w *wrappingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (w *wrappingTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return context.WithValue(ctx, wrapKey{}, true)
}
func (w *wrappingTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	if ctx.Value(wrapKey{}) == true {
		w.ends++
	}
}

// A PoolTracer composes with the application's own tracers through pgx's
// multitracer, in either order and nested; a pool without one reports no
// wait time and the other pool instruments as before.
func TestPoolTracerComposes(t *testing.T) {
	db := pgmqtest.New(t)
	for name, mk := range map[string]func(*PoolTracer, *wrappingTracer) pgx.QueryTracer{
		"first":  func(p *PoolTracer, w *wrappingTracer) pgx.QueryTracer { return multitracer.New(p, w) },
		"last":   func(p *PoolTracer, w *wrappingTracer) pgx.QueryTracer { return multitracer.New(w, p) },
		"nested": func(p *PoolTracer, w *wrappingTracer) pgx.QueryTracer { return multitracer.New(w, multitracer.New(p)) },
	} {
		t.Run(name, func(t *testing.T) {
			w := &wrappingTracer{}
			pool := newTracedPool(t, db.URL, 1, mk(NewPoolTracer(), w))
			_, r := newTestMetrics(t, WithPool("", pool))
			holdThenRelease(t, pool, time.Millisecond)
			if pts := waitPoints(t, collect(t, r)); len(pts) != 1 || pts[0].Count != 2 || w.ends != 2 {
				t.Errorf("wait_time %+v, other tracer saw %d ends; want 2 acquires in both", pts, w.ends)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		pool := newTracedPool(t, db.URL, 1, nil)
		_, r := newTestMetrics(t, WithPool("", pool))
		holdThenRelease(t, pool, time.Millisecond)
		c := collect(t, r)
		if pts := waitPoints(t, c); len(pts) != 0 {
			t.Errorf("wait_time points %+v without a PoolTracer", pts)
		}
		if _, ok := c.value(MetricConnectionCount); !ok {
			t.Error("no connection count without a PoolTracer")
		}
	})
}

// One PoolTracer may serve two pools, each recorded under its own name.
func TestPoolTracerTwoPools(t *testing.T) {
	db := pgmqtest.New(t)
	pt := NewPoolTracer()
	a := newTracedPool(t, db.URL, 1, pt)
	b := newTracedPool(t, db.URL, 1, pt)
	_, r := newTestMetrics(t, WithPool("a", a), WithPool("b", b))
	holdThenRelease(t, a, time.Millisecond)
	conn, err := b.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn.Release()
	counts := map[string]uint64{}
	for _, p := range waitPoints(t, collect(t, r)) {
		v, _ := p.Attributes.Value(AttrPoolName)
		counts[v.AsString()] = p.Count
	}
	if counts["a"] != 2 || counts["b"] != 1 {
		t.Errorf("acquires by pool %v, want a:2 b:1", counts)
	}
}
