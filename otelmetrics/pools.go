package otelmetrics

import (
	"errors"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
)

// ConnectionWaitBuckets are the bucket boundaries, in seconds, of
// db.client.connection.wait_time, set as the instrument's advice (a View
// overrides them). The conventions give none for it: these are
// db.client.operation.duration's (1 ms to 10 s) with 10 µs and 100 µs
// added below, since handing out an idle connection takes about a
// microsecond, and waiting is what the histogram is for.
var ConnectionWaitBuckets = []float64{0.00001, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// poolInstruments are the pool instruments: the conventions' connection
// instruments (dbconv), built by their typed constructors, and this
// module's own.
type poolInstruments struct {
	count    dbconv.ClientConnectionCountObservable
	max      dbconv.ClientConnectionMaxObservable
	idleMin  dbconv.ClientConnectionIdleMinObservable
	waitTime dbconv.ClientConnectionWaitTime // recorded by PoolTracer
	util     metric.Float64ObservableGauge
	waits    metric.Int64ObservableCounter
}

// newPoolInstruments creates the pool instruments and binds each pool's
// PoolTracer, if it has one, to the wait-time histogram.
func newPoolInstruments(meter metric.Meter, pools []*poolObserver) (poolInstruments, error) {
	var (
		pi   poolInstruments
		errs [6]error
	)
	pi.count, errs[0] = dbconv.NewClientConnectionCountObservable(meter)
	pi.max, errs[1] = dbconv.NewClientConnectionMaxObservable(meter)
	pi.idleMin, errs[2] = dbconv.NewClientConnectionIdleMinObservable(meter)
	pi.waitTime, errs[3] = dbconv.NewClientConnectionWaitTime(meter,
		metric.WithExplicitBucketBoundaries(ConnectionWaitBuckets...))
	pi.util, errs[4] = meter.Float64ObservableGauge(MetricConnectionUtil,
		metric.WithUnit("1"),
		metric.WithDescription("Connections in use divided by the pool's maximum, 0 to 1."))
	pi.waits, errs[5] = meter.Int64ObservableCounter(MetricAcquireWaits,
		metric.WithUnit("{acquire}"),
		metric.WithDescription("Acquires that found no idle connection and had to wait for one."))
	for _, p := range pools {
		p.bind(pi.waitTime.Inst())
	}
	return pi, errors.Join(errs[:]...)
}

func (pi poolInstruments) observables() []metric.Observable {
	return []metric.Observable{pi.count.Inst(), pi.max.Inst(), pi.idleMin.Inst(), pi.util, pi.waits}
}

// poolObserver samples one pool. Its attribute sets are computed once.
type poolObserver struct {
	name    string
	pool    *pgxpool.Pool
	idleMin int32
	tracer  *PoolTracer // found in the pool's config; nil without one
	attrs   metric.MeasurementOption
	used    metric.MeasurementOption
	idle    metric.MeasurementOption
}

func newPoolObserver(name string, pool *pgxpool.Pool) *poolObserver {
	cfg := pool.Config()
	if name == "" {
		name = poolName(cfg)
	}
	var c dbconv.ClientConnectionCountObservable
	nameAttr := c.AttrClientConnectionPoolName(name)
	return &poolObserver{
		name:    name,
		pool:    pool,
		idleMin: cfg.MinIdleConns,
		tracer:  findPoolTracer(cfg.ConnConfig.Tracer),
		attrs:   metric.WithAttributeSet(attribute.NewSet(nameAttr)),
		used:    metric.WithAttributeSet(attribute.NewSet(nameAttr, c.AttrClientConnectionState(dbconv.ClientConnectionStateUsed))),
		idle:    metric.WithAttributeSet(attribute.NewSet(nameAttr, c.AttrClientConnectionState(dbconv.ClientConnectionStateIdle))),
	}
}

// bind makes the pool's PoolTracer, if it has one, record its acquires into
// h under the pool's name.
func (p *poolObserver) bind(h metric.Float64Histogram) {
	if p.tracer != nil {
		p.tracer.bind(p.pool, &waitRecorder{hist: h, opts: []metric.RecordOption{p.attrs}})
	}
}

// unbind stops the recording bind started, unless another binding has
// replaced it since.
func (p *poolObserver) unbind() {
	if p.tracer != nil {
		p.tracer.unbind(p.pool)
	}
}

// PoolName is the default db.client.connection.pool.name of a pool, as the
// semantic conventions suggest: server.address:server.port/db.namespace. It
// is built from the parsed configuration and never contains credentials.
func PoolName(pool *pgxpool.Pool) string {
	return poolName(pool.Config())
}

func poolName(cfg *pgxpool.Config) string {
	cc := cfg.ConnConfig
	return net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database
}

// poolStats is one sample of a pool (unexported: nothing outside the
// callback needs it; the instruments carry the same values).
type poolStats struct {
	// Used connections are acquired by the application; Idle ones wait in
	// the pool; Total also counts connections being opened.
	Used, Idle, Total, Max int32
	// Utilization is Used / Max, in 0..1. It is not (Total-Idle)/Total: a
	// pool with 2 of 10 connections open, both busy, is at 0.2, not 1.
	Utilization float64
}

func (p *poolObserver) stats() (poolStats, *pgxpool.Stat) {
	st := p.pool.Stat()
	s := poolStats{
		Used:  st.AcquiredConns(),
		Idle:  st.IdleConns(),
		Total: st.TotalConns(),
		Max:   st.MaxConns(),
	}
	if s.Max > 0 {
		s.Utilization = float64(s.Used) / float64(s.Max)
	}
	return s, st
}

func (p *poolObserver) observe(o metric.Observer, pi poolInstruments) {
	s, st := p.stats()
	o.ObserveInt64(pi.count.Inst(), int64(s.Used), p.used)
	o.ObserveInt64(pi.count.Inst(), int64(s.Idle), p.idle)
	o.ObserveInt64(pi.max.Inst(), int64(s.Max), p.attrs)
	if p.idleMin > 0 {
		o.ObserveInt64(pi.idleMin.Inst(), int64(p.idleMin), p.attrs)
	}
	o.ObserveFloat64(pi.util, s.Utilization, p.attrs)
	o.ObserveInt64(pi.waits, st.EmptyAcquireCount(), p.attrs)
}
