package otelmetrics

import (
	"errors"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

type poolInstruments struct {
	count    metric.Int64ObservableUpDownCounter
	max      metric.Int64ObservableUpDownCounter
	idleMin  metric.Int64ObservableUpDownCounter
	util     metric.Float64ObservableGauge
	waits    metric.Int64ObservableCounter
	waitTime metric.Float64ObservableCounter
}

func newPoolInstruments(meter metric.Meter) (poolInstruments, error) {
	var (
		pi   poolInstruments
		errs [6]error
	)
	pi.count, errs[0] = meter.Int64ObservableUpDownCounter(MetricConnectionCount,
		metric.WithUnit("{connection}"),
		metric.WithDescription("Connections open in the pool, by state (used or idle)."))
	pi.max, errs[1] = meter.Int64ObservableUpDownCounter(MetricConnectionMax,
		metric.WithUnit("{connection}"),
		metric.WithDescription("The most connections the pool may open."))
	pi.idleMin, errs[2] = meter.Int64ObservableUpDownCounter(MetricConnectionIdleMin,
		metric.WithUnit("{connection}"),
		metric.WithDescription("The fewest idle connections the pool keeps (reported when configured)."))
	pi.util, errs[3] = meter.Float64ObservableGauge(MetricConnectionUtil,
		metric.WithUnit("1"),
		metric.WithDescription("Connections in use divided by the pool's maximum, 0 to 1."))
	pi.waits, errs[4] = meter.Int64ObservableCounter(MetricAcquireWaits,
		metric.WithUnit("{acquire}"),
		metric.WithDescription("Acquires that had to wait for a connection."))
	pi.waitTime, errs[5] = meter.Float64ObservableCounter(MetricAcquireWaitTime,
		metric.WithUnit("s"),
		metric.WithDescription("Time acquires spent waiting for a connection."))
	return pi, errors.Join(errs[:]...)
}

func (pi poolInstruments) observables() []metric.Observable {
	return []metric.Observable{pi.count, pi.max, pi.idleMin, pi.util, pi.waits, pi.waitTime}
}

// poolObserver samples one pool. Its attribute sets are computed once.
type poolObserver struct {
	name    string
	pool    *pgxpool.Pool
	idleMin int32
	attrs   metric.MeasurementOption
	used    metric.MeasurementOption
	idle    metric.MeasurementOption
}

func newPoolObserver(name string, pool *pgxpool.Pool) *poolObserver {
	if name == "" {
		name = PoolName(pool)
	}
	nameAttr := attribute.String(AttrPoolName, name)
	return &poolObserver{
		name:    name,
		pool:    pool,
		idleMin: pool.Config().MinIdleConns,
		attrs:   metric.WithAttributeSet(attribute.NewSet(nameAttr)),
		used:    metric.WithAttributeSet(attribute.NewSet(nameAttr, attribute.String(AttrConnectionState, "used"))),
		idle:    metric.WithAttributeSet(attribute.NewSet(nameAttr, attribute.String(AttrConnectionState, "idle"))),
	}
}

// PoolName is the default db.client.connection.pool.name of a pool, as the
// semantic conventions suggest: server.address:server.port/db.namespace. It
// is built from the parsed configuration and never contains credentials.
func PoolName(pool *pgxpool.Pool) string {
	cc := pool.Config().ConnConfig
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
	o.ObserveInt64(pi.count, int64(s.Used), p.used)
	o.ObserveInt64(pi.count, int64(s.Idle), p.idle)
	o.ObserveInt64(pi.max, int64(s.Max), p.attrs)
	if p.idleMin > 0 {
		o.ObserveInt64(pi.idleMin, int64(p.idleMin), p.attrs)
	}
	o.ObserveFloat64(pi.util, s.Utilization, p.attrs)
	o.ObserveInt64(pi.waits, st.EmptyAcquireCount(), p.attrs)
	o.ObserveFloat64(pi.waitTime, st.EmptyAcquireWaitTime().Seconds(), p.attrs)
}
