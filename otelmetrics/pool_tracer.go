package otelmetrics

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
)

// PoolTracer times a pgxpool's acquires for db.client.connection.wait_time,
// the conventions' histogram of the time it took to obtain a connection
// from the pool. pgx calls it from Acquire (pgxpool.AcquireTracer), so it
// must be in the pool's configuration before the pool is built:
//
//	cfg, err := pgxpool.ParseConfig(url)
//	...
//	cfg.ConnConfig.Tracer = otelmetrics.NewPoolTracer()
//	// with tracers of your own: multitracer.New(otelmetrics.NewPoolTracer(), yours)
//	pool, err := pgxpool.NewWithConfig(ctx, cfg)
//	m, err := otelmetrics.New(otelmetrics.WithPool("", pool))
//
// WithPool finds it there, alone or among the tracers of a pgx
// multitracer.Tracer, and New binds it to the pool's name; until then, and
// after Metrics.Close, it records nothing. Every acquire that obtains a
// connection is recorded (one that fails, cancelled or timed out, is not),
// in the caller's context. A pool without one reports the other pool
// instruments, but no wait time. Its query hooks do nothing.
//
// One PoolTracer may serve several pools. It is safe for concurrent use.
type PoolTracer struct {
	mu       sync.Mutex                    // serialises bind and unbind
	bindings atomic.Pointer[[]poolBinding] // read on every acquire
}

// poolBinding is where one pool's acquires are recorded.
type poolBinding struct {
	pool *pgxpool.Pool
	rec  *waitRecorder
}

// waitRecorder is the wait-time histogram and the pool's attribute set.
type waitRecorder struct {
	hist metric.Float64Histogram
	opts []metric.RecordOption
}

// NewPoolTracer returns a PoolTracer bound to no pool yet.
func NewPoolTracer() *PoolTracer { return &PoolTracer{} }

// The hooks pgx finds on a pool's ConnConfig.Tracer.
var (
	_ pgx.QueryTracer       = (*PoolTracer)(nil)
	_ pgxpool.AcquireTracer = (*PoolTracer)(nil)
)

// epoch anchors acquire times: time.Since reads only the monotonic clock.
var epoch = time.Now()

// acquireStart is the context TraceAcquireStart returns: its own value,
// carrying the start (one allocation).
type acquireStart struct {
	context.Context
	start time.Duration // since epoch
	rec   *waitRecorder
}

type acquireKey struct{}

// Value returns s itself for acquireKey and the wrapped context's values
// otherwise.
func (s *acquireStart) Value(key any) any {
	if _, ok := key.(acquireKey); ok {
		return s
	}
	return s.Context.Value(key)
}

// TraceAcquireStart notes when the acquire started, when the pool is bound.
func (t *PoolTracer) TraceAcquireStart(ctx context.Context, pool *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	rec := t.recorder(pool)
	if rec == nil {
		return ctx
	}
	return &acquireStart{Context: ctx, start: time.Since(epoch), rec: rec}
}

// TraceAcquireEnd records the acquire's duration, when it obtained a
// connection.
func (t *PoolTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	s, ok := ctx.(*acquireStart)
	if !ok {
		// Another tracer of a multitracer wrapped the context after this one.
		if s, ok = ctx.Value(acquireKey{}).(*acquireStart); !ok {
			return
		}
	}
	if data.Err != nil {
		return
	}
	s.rec.hist.Record(s.Context, (time.Since(epoch) - s.start).Seconds(), s.rec.opts...)
}

// TraceQueryStart does nothing: pgx requires a ConnConfig.Tracer to be a
// QueryTracer.
func (*PoolTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd does nothing.
func (*PoolTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// recorder returns where pool's acquires are recorded, nil when nowhere.
func (t *PoolTracer) recorder(pool *pgxpool.Pool) *waitRecorder {
	b := t.bindings.Load()
	if b == nil {
		return nil
	}
	for i := range *b {
		if (*b)[i].pool == pool {
			return (*b)[i].rec
		}
	}
	return nil
}

// bind records pool's acquires with rec from now on, replacing any earlier
// binding of pool.
func (t *PoolTracer) bind(pool *pgxpool.Pool, rec *waitRecorder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next []poolBinding
	if b := t.bindings.Load(); b != nil {
		next = slices.DeleteFunc(slices.Clone(*b), func(pb poolBinding) bool { return pb.pool == pool })
	}
	next = append(next, poolBinding{pool: pool, rec: rec})
	t.bindings.Store(&next)
}

// unbind stops recording pool's acquires.
func (t *PoolTracer) unbind(pool *pgxpool.Pool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bindings.Load()
	if b == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*b), func(pb poolBinding) bool { return pb.pool == pool })
	t.bindings.Store(&next)
}

// findPoolTracer returns the PoolTracer in a pool's ConnConfig.Tracer:
// that tracer itself, or one of a pgx multitracer's acquire tracers
// (nested multitracers included); nil when there is none.
func findPoolTracer(qt pgx.QueryTracer) *PoolTracer {
	switch t := qt.(type) {
	case *PoolTracer:
		return t
	case *multitracer.Tracer:
		for _, at := range t.PoolAcquireTracers {
			if q, ok := at.(pgx.QueryTracer); ok {
				if pt := findPoolTracer(q); pt != nil {
					return pt
				}
			}
		}
	}
	return nil
}
