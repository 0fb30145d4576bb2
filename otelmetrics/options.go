package otelmetrics

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
)

// Defaults for the queue sampler.
const (
	// DefaultSampleTimeout bounds one queue sample, connection included.
	DefaultSampleTimeout = 2 * time.Second
	// DefaultMinSampleInterval is the shortest time between two queue
	// samples; collections in between (several readers, health checks)
	// reuse the last sample.
	DefaultMinSampleInterval = time.Second
	// DefaultElectionTTL is the election lease's lifetime when the
	// collection interval is unknown (see WithCollectionInterval).
	DefaultElectionTTL = 30 * time.Second
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
	meterProvider     metric.MeterProvider
	pools             []namedPool
	queuePool         *pgxpool.Pool
	queues            []string
	sampleTimeout     time.Duration
	minSampleInterval time.Duration
	exactThreshold    int64
	includeQueues     []string
	excludeQueues     []string
	providerLimit     int // declared cardinality limit of the MeterProvider; 0 unknown
	election          bool
	electionKey       int64
	electionKeySet    bool
	electionTTL       time.Duration // 0: derived (see defaultElectionTTL)
	exportHealth      func() bool   // nil: always healthy
	samplerConfig     *pgxpool.Config
	now               func() time.Time
	// collectionInterval is the MeterProvider's declared time between
	// collections; 0 unknown.
	collectionInterval time.Duration
}

func newConfig(opts []Option) config {
	c := config{
		sampleTimeout:     DefaultSampleTimeout,
		minSampleInterval: DefaultMinSampleInterval,
		election:          true,
		now:               time.Now,
	}
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

// WithPool reports a connection pool's utilization under the given name
// (db.client.connection.pool.name). An empty name derives one from the
// pool's configuration as server.address:server.port/db.namespace, which
// never contains credentials. May be given once per pool; nil is ignored.
func WithPool(name string, pool *pgxpool.Pool) Option {
	return optionFunc(func(c *config) {
		if pool != nil {
			c.pools = append(c.pools, namedPool{name: name, pool: pool})
		}
	})
}

// WithQueueSampling enables the PGMQ queue instruments. The sampler opens
// one dedicated connection the way the pool opens its own (its connection
// config, BeforeConnect, AfterConnect and query exec mode), so pool
// saturation never delays a sample and a sample never takes a connection
// from the application. WithSamplerConfig connects it elsewhere. With no queue names every queue is reported,
// discovered at each sample; a dropped queue simply stops being reported.
func WithQueueSampling(pool *pgxpool.Pool, queues ...string) Option {
	return optionFunc(func(c *config) {
		if pool != nil {
			c.queuePool = pool
			c.queues = append([]string(nil), queues...)
		}
	})
}

// WithSampleTimeout bounds one queue sample (connecting, electing and
// querying). Non-positive values are ignored.
func WithSampleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.sampleTimeout = d
		}
	})
}

// WithMinSampleInterval sets the shortest time between two queue samples.
// Collections within it reuse the last successful sample. Negative values
// are ignored; zero samples at every collection.
func WithMinSampleInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d >= 0 {
			c.minSampleInterval = d
		}
	})
}

// WithExactCountThreshold sets the depth up to which queues are counted
// exactly; deeper queues are estimated from PostgreSQL's statistics.
// Non-positive values are ignored (the default is
// pgmqclient.DefaultExactCountThreshold).
func WithExactCountThreshold(n int64) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.exactThreshold = n
		}
	})
}

// WithSamplerConfig connects the queue sampler with cfg instead of the
// sampled pool's configuration: another DSN (the primary, when the
// application's pool reads from a standby; a direct address, when the pool
// goes through a pooler), another role, other hooks. Its BeforeConnect and
// AfterConnect run as pgxpool would run them. The config is copied. Nil is
// ignored.
func WithSamplerConfig(cfg *pgxpool.Config) Option {
	return optionFunc(func(c *config) {
		if cfg != nil {
			c.samplerConfig = cfg.Copy()
		}
	})
}

// WithSamplerElection turns the election of a single queue sampler across
// replicas on or off (default on). When on, only the replica holding the
// election lease (a row in pgmqotel.election_lease, see ElectionDDL)
// reports queue metrics; the others report only their processors and
// pools. The leader renews the lease at each collection and steps down
// when it cannot, when its term's trust window runs out, or when its
// exports keep failing; another replica takes over within the lease's TTL
// (WithElectionTTL).
func WithSamplerElection(enabled bool) Option {
	return optionFunc(func(c *config) { c.election = enabled })
}

// WithElectionTTL sets the lifetime of the sampler's election lease from
// each renewal: the longest a replica that froze, lost the network or died
// keeps the other replicas from taking over. It must be longer than the
// time between two collections plus the sample timeout, or leadership
// lapses between collections; New refuses (ErrInvalidElectionTTL) one not
// above the minimum sample interval plus the sample timeout. The default
// is three collection intervals plus the sample timeout when the interval
// is declared (WithCollectionInterval, among otelsetup's MetricsOptions),
// else DefaultElectionTTL, and at least twice the minimum sample interval
// plus the sample timeout. Non-positive values are ignored.
func WithElectionTTL(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.electionTTL = d
		}
	})
}

// WithExportHealth gives the sampler election a predicate telling whether
// this replica's metrics reach the backend. A leader for which it turns
// false marks its lease unhealthy, and a replica for which it is true takes
// the lease over at its next collection, so the queue metrics move to a
// replica that can export them; a replica for which it is false never takes
// a healthy leader's lease, but leads when no replica can export. By
// default it is always true; otelsetup's MetricsOptions gives its
// MeterProvider's ExportHealthy. Nil is ignored.
func WithExportHealth(healthy func() bool) Option {
	return optionFunc(func(c *config) {
		if healthy != nil {
			c.exportHealth = healthy
		}
	})
}

// WithElectionKey sets the key of the sampler election. By default it is
// derived from the configured queue names, so replicas sampling the same
// queues elect one sampler among themselves.
func WithElectionKey(key int64) Option {
	return optionFunc(func(c *config) {
		c.electionKey = key
		c.electionKeySet = true
	})
}

// withClock replaces time.Now, for tests of the throttle.
func withClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithQueueInclude limits queue sampling to the queues whose name matches
// one of these glob patterns (path.Match syntax: "orders_*", "tmp_?",
// matched case-insensitively). May be given several times; the patterns
// add up. Invalid patterns make New fail.
func WithQueueInclude(patterns ...string) Option {
	return optionFunc(func(c *config) { c.includeQueues = append(c.includeQueues, patterns...) })
}

// WithQueueExclude leaves out of queue sampling the queues whose name
// matches one of these glob patterns, after WithQueueInclude. May be given
// several times; the patterns add up. Invalid patterns make New fail.
func WithQueueExclude(patterns ...string) Option {
	return optionFunc(func(c *config) { c.excludeQueues = append(c.excludeQueues, patterns...) })
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
// from which the election's TTL is derived (see WithElectionTTL).
// otelsetup's MetricsOptions declares its provider's. Non-positive values
// are ignored.
func WithCollectionInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.collectionInterval = d
		}
	})
}
