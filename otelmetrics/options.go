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
	providerLimit     int // declared cardinality limit of a user-supplied provider; 0 unknown
	election          bool
	electionKey       int64
	electionKeySet    bool
	now               func() time.Time
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
// one dedicated connection with the pool's connection settings, so pool
// saturation never delays a sample and a sample never takes a connection
// from the application. With no queue names every queue is reported,
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

// WithSamplerElection turns the election of a single queue sampler across
// replicas on or off (default on). When on, only the instance holding a
// PostgreSQL session advisory lock reports queue metrics; the others report
// only their processors and pools, and take over within one collection
// interval when the holder's connection dies.
func WithSamplerElection(enabled bool) Option {
	return optionFunc(func(c *config) { c.election = enabled })
}

// WithElectionKey sets the advisory lock key of the sampler election. By
// default it is derived from the configured queue names, so replicas
// sampling the same queues elect one sampler among themselves.
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

// WithProviderCardinalityLimit declares the cardinality limit (points per
// instrument and collection) of a MeterProvider given with
// WithMeterProvider, which this module cannot read. New warns once through
// otel.Handle when the sampled queues would pass it. Without it a provider
// of this package's NewMeterProvider is known, and any other is assumed to
// have the SDK's default of 2,000. Non-positive values mean no limit.
func WithProviderCardinalityLimit(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			n = -1
		}
		c.providerLimit = n
	})
}
