package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgmqotel/pgmqotel/queuesampler"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the instrumentation scope of every instrument of this package.
const ScopeName = "github.com/pgmqotel/pgmqotel/otelmetrics"

// Version is the version of this instrumentation, reported as the scope version.
const Version = "0.1.0"

// Instrument names. docs/metrics.md lists them with units and attributes; a test
// keeps the two in step.
const (
	MetricProcessorActive   = "orchestration.processor.active"
	MetricConnectionCount   = "db.client.connection.count"
	MetricConnectionMax     = "db.client.connection.max"
	MetricConnectionIdleMin = "db.client.connection.idle.min"
	MetricConnectionWait    = "db.client.connection.wait_time"
	MetricConnectionUtil    = "pgxpool.connection.utilization"
	MetricAcquireWaits      = "pgxpool.acquire.waits"
	MetricQueueDepth        = "pgmq.queue.depth"
	MetricQueueOldestAge    = "pgmq.queue.oldest_message.age"
	MetricQueueSent         = "pgmq.queue.sent.messages"
	MetricSamplerErrors     = "pgmq.sampler.errors"
)

// Attribute keys.
const (
	AttrProcessorKind   = "orchestration.processor.kind"
	AttrPoolName        = "db.client.connection.pool.name"
	AttrConnectionState = "db.client.connection.state"
	AttrMessagingSystem = "messaging.system"
	AttrDestinationName = "messaging.destination.name"
	AttrMessageState    = "pgmq.message.state"
	AttrDepthMethod     = "pgmq.depth.method"
	AttrErrorType       = "error.type"
)

// messagingSystem is the messaging.system of the queue points.
const messagingSystem = "pgmq"

// Metrics owns the registered instruments. Create it with New and release it
// with Close. Its methods are safe for concurrent use.
type Metrics struct {
	cfg          config
	processors   processorRegistry
	pools        []*poolObserver
	dbs          []*sampledDB // one per sampled database
	cardinality  cardinalityCheck
	registration []metric.Registration
	closeOnce    sync.Once
	closeErr     error
}

// New creates the instruments on the configured MeterProvider and registers
// their callbacks. It performs no I/O: the queue sampler connects at the
// first collection.
func New(opts ...Option) (*Metrics, error) {
	cfg := newConfig(opts)
	mp := cfg.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version), metric.WithSchemaURL(semconv.SchemaURL))
	m := &Metrics{cfg: cfg, cardinality: cardinalityCheck{limit: cardinalityLimitOf(cfg)}}
	for _, p := range cfg.pools {
		m.pools = append(m.pools, newPoolObserver(p.name, p.pool))
	}

	reg, err := m.registerLocal(meter)
	if err != nil {
		return nil, err
	}
	m.registration = append(m.registration, reg)

	for _, sc := range cfg.samplers {
		if sc.ExportHealthy == nil {
			sc.ExportHealthy = cfg.exportHealth
		}
		if sc.ElectionTTL == 0 {
			timeout := sc.SampleTimeout
			if timeout <= 0 {
				timeout = queuesampler.DefaultSampleTimeout
			}
			minInterval := sc.MinInterval
			if minInterval == 0 {
				minInterval = queuesampler.DefaultMinInterval
			}
			sc.ElectionTTL = max(defaultElectionTTL(cfg.collectionInterval, timeout), 2*(max(minInterval, 0)+timeout))
		}
		if sc.OnError == nil {
			sc.OnError = otel.Handle
		}
		s, err := queuesampler.New(sc)
		if err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("otelmetrics: queue sampling: %w", err)
		}
		m.dbs = append(m.dbs, newSampledDB(s))
	}
	if len(m.dbs) > 0 {
		reg, err := m.registerQueues(meter)
		if err != nil {
			_ = m.Close()
			return nil, err
		}
		m.registration = append(m.registration, reg)
	}
	return m, nil
}

// defaultElectionTTL is three collection intervals plus the sample
// timeout: the leader renews at every collection, so two may be late or
// fail before the lease lapses. Without a known interval it is
// DefaultElectionTTL.
func defaultElectionTTL(interval, sampleTimeout time.Duration) time.Duration {
	if interval > 0 {
		return 3*interval + sampleTimeout
	}
	return queuesampler.DefaultElectionTTL
}

// registerLocal registers one callback for the in-memory instruments:
// processors and pools. They never wait on the network.
func (m *Metrics) registerLocal(meter metric.Meter) (metric.Registration, error) {
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	active, err := meter.Int64ObservableUpDownCounter(MetricProcessorActive,
		metric.WithUnit("{processor}"),
		metric.WithDescription("Processors running now, per processor kind."))
	add(err)
	pi, err := newPoolInstruments(meter, m.pools)
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otelmetrics: create instruments: %w", err)
	}

	observables := append([]metric.Observable{active}, pi.observables()...)
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, k := range m.processors.list() {
			o.ObserveInt64(active, k.Active(), k.attrs)
		}
		for _, p := range m.pools {
			p.observe(o, pi)
		}
		return nil
	}, observables...)
}

// Close unregisters the callbacks, releases the queue sampler's election
// lease and closes its connection. It is idempotent. Shut the
// MeterProvider down first: its final export still observes these
// instruments, and after Close it would carry none of them.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		for _, r := range m.registration {
			errs = append(errs, r.Unregister())
		}
		for _, p := range m.pools {
			p.unbind()
		}
		for _, db := range m.dbs {
			errs = append(errs, db.s.Close())
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}
