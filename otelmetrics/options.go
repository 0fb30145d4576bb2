package otelmetrics

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
	"go.opentelemetry.io/otel/metric"
)

// Option configures New. A nil Option is ignored.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type namedPool struct {
	name string
	pool *pgxpool.Pool
}

type config struct {
	meterProvider metric.MeterProvider
	pools         []namedPool
	samplers      []queuesampler.Config
	providerLimit int         // declared cardinality limit of the MeterProvider; 0 unknown
	exportHealth  func() bool // nil: always healthy
	now           func() time.Time
	// collectionInterval is the MeterProvider's declared time between
	// collections; 0 unknown.
	collectionInterval time.Duration
}

func newConfig(opts []Option) config {
	c := config{now: time.Now}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithMeterProvider sets the MeterProvider the instruments are created on.
// The default is the global one (otel.GetMeterProvider). Nil is ignored.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.meterProvider = mp
		}
	})
}

// WithPool reports a connection pool's connections and utilization under
// the given name (db.client.connection.pool.name). An empty name derives
// one from the pool's configuration as
// server.address:server.port/db.namespace, which never contains
// credentials. When the pool's configuration holds a PoolTracer (alone or
// in a pgx multitracer, set before the pool was built), its acquires feed
// db.client.connection.wait_time too. May be given once per pool; nil is
// ignored.
func WithPool(name string, pool *pgxpool.Pool) Option {
	return optionFunc(func(c *config) {
		if pool != nil {
			c.pools = append(c.pools, namedPool{name: name, pool: pool})
		}
	})
}

// WithQueueSampling reports the PGMQ queues of the database pool connects
// to: every queue, discovered at each sample, or the named ones. The
// queues are sampled by a queuesampler.Sampler on a connection of its own,
// opened the way the pool opens its connections, with the defaults of
// queuesampler.Config; WithQueueSampler takes the whole configuration.
// Nil is ignored.
func WithQueueSampling(pool *pgxpool.Pool, queues ...string) Option {
	return optionFunc(func(c *config) {
		if pool != nil {
			c.samplers = append(c.samplers, queuesampler.Config{Conn: pool.Config(),
				Depth: queuedepth.Options{Queues: append([]string(nil), queues...)}})
		}
	})
}

// WithQueueSampler reports the PGMQ queues of one database, sampled as cfg
// says (which queues, how they are counted, the sample timeout and
// interval, the election across replicas). Give it once per database:
// every point of a database carries its server.address, server.port and
// db.namespace, so same-named queues of two databases stay apart. When
// cfg.ExportHealthy is nil, the sampler uses WithExportHealth's predicate;
// when cfg.ElectionTTL is zero, three export intervals plus the sample
// timeout where the export interval is known. cfg.OnError defaults to
// otel.Handle. A cfg without Conn is ignored.
func WithQueueSampler(cfg queuesampler.Config) Option {
	return optionFunc(func(c *config) {
		if cfg.Conn != nil {
			c.samplers = append(c.samplers, cfg)
		}
	})
}

// WithExportHealth gives the queue samplers' elections a predicate
// telling whether this replica's metrics reach the backend. A leader for
// which it turns false marks its lease unhealthy, and a replica for which
// it is true takes the lease over at its next collection, so the queue
// metrics move to a replica that can export them; a replica for which it
// is false never takes a healthy leader's lease, but leads when no replica
// can export. It applies to every sampler whose queuesampler.Config has no
// ExportHealthy of its own. By default it is always true; otelsetup's
// MetricsOptions gives its MeterProvider's ExportHealthy. Nil is ignored.
func WithExportHealth(healthy func() bool) Option {
	return optionFunc(func(c *config) {
		if healthy != nil {
			c.exportHealth = healthy
		}
	})
}

// WithDeclaredCardinalityLimit declares the cardinality limit (points per
// instrument and collection) of the MeterProvider the instruments are
// created on, which this module cannot read, whether given with
// WithMeterProvider or the global one. New warns once through otel.Handle
// when the sampled queues would pass it. Undeclared, the SDK's default of
// 2,000 is assumed. otelsetup's MetricsOptions declares its provider's.
// Non-positive values mean no limit.
func WithDeclaredCardinalityLimit(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			n = -1
		}
		c.providerLimit = n
	})
}

// WithCollectionInterval declares the time between two collections of
// the MeterProvider's readers (the export interval of a periodic reader),
// from which the default election TTL of the queue samplers is derived:
// three intervals plus the sample timeout (see
// queuesampler.Config.ElectionTTL). otelsetup's MetricsOptions declares
// its provider's. Non-positive values are ignored.
func WithCollectionInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.collectionInterval = d
		}
	})
}
