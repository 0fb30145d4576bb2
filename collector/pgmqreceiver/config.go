package pgmqreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Defaults and bounds of the configuration.
const (
	// DefaultCollectionInterval is how often each database is sampled
	// unless collection_interval says otherwise.
	DefaultCollectionInterval = 10 * time.Second
	// MinCollectionInterval is the shortest collection_interval accepted:
	// the sampler's own minimum interval (queuesampler.DefaultMinInterval).
	MinCollectionInterval = queuesampler.DefaultMinInterval
)

// Config is the configuration of the pgmq receiver.
type Config struct {
	scraperhelper.ControllerConfig `mapstructure:",squash"`
	metadata.MetricsBuilderConfig  `mapstructure:",squash"`

	// Databases are the PostgreSQL databases whose PGMQ queues are
	// sampled, each on a connection of its own. At least one.
	Databases []DatabaseConfig `mapstructure:"databases"`
	// SampleTimeout bounds one database's sample, connection and
	// election included; a database that takes longer loses only its own
	// points for that interval. Zero means queuesampler.DefaultSampleTimeout.
	SampleTimeout time.Duration `mapstructure:"sample_timeout"`
	// Election makes the receivers (and the in-process samplers of
	// package otelmetrics) that sample the same queues of the same
	// database elect one sampler among them.
	Election ElectionConfig `mapstructure:"election"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ElectionConfig configures the election across Collector replicas.
type ElectionConfig struct {
	// Enabled elects one sampler per database and queue selection across
	// every replica (default true). Without it every replica samples.
	Enabled bool `mapstructure:"enabled"`
	// TTL is the lease's lifetime from each renewal: the longest a
	// replica that died holding it delays the takeover. Zero derives it:
	// three collection intervals plus the sample timeout. A TTL given
	// must exceed one collection interval plus the sample timeout, so the
	// holder renews it before it runs out.
	TTL time.Duration `mapstructure:"ttl"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DatabaseConfig is one database to sample.
type DatabaseConfig struct {
	// DSN is the connection string, as a URL
	// (postgres://user:password@host:5432/db?sslmode=verify-full) or as
	// keyword/value pairs (host=... dbname=...), with libpq's TLS
	// parameters (sslmode, sslrootcert, sslcert, sslkey, sslpassword,
	// sslsni). Write secrets as ${env:NAME}. Required.
	DSN configopaque.String `mapstructure:"dsn"`
	// TLS, when given, replaces TLS parameters in the DSN with the
	// Collector's usual TLS settings: TLS is then required, verified
	// against ca_file (or the system roots) with the DSN's host as server
	// name unless server_name_override or insecure_skip_verify says
	// otherwise; insecure: true connects without TLS. A DSN carrying ssl*
	// parameters and a tls block together are refused.
	TLS *configtls.ClientConfig `mapstructure:"tls"`
	// Queues limits the sample to these queues; empty means every queue,
	// discovered at each sample.
	Queues []string `mapstructure:"queues"`
	// Include and Exclude select queues by glob pattern ("orders_*"),
	// matched against the lower-cased name.
	Include []string `mapstructure:"include"`
	Exclude []string `mapstructure:"exclude"`
	// ExactCountThreshold is the largest depth counted exactly; deeper
	// queues are estimated. Zero means queuedepth.DefaultExactCountThreshold.
	ExactCountThreshold int64 `mapstructure:"exact_count_threshold"`
	// LockTimeout bounds the wait for one queue table's lock. Zero means
	// queuedepth.DefaultLockTimeout.
	LockTimeout time.Duration `mapstructure:"lock_timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the receiver-wide settings; each database is checked by
// its own Validate, which the Collector calls with the field's path
// (databases::0: dsn: ...).
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.Databases) == 0 {
		errs = append(errs, errors.New("databases: at least one database is required"))
	}
	if cfg.CollectionInterval < MinCollectionInterval {
		errs = append(errs, fmt.Errorf("collection_interval: %v is below the minimum of %v", cfg.CollectionInterval, MinCollectionInterval))
	}
	if cfg.SampleTimeout < 0 {
		errs = append(errs, fmt.Errorf("sample_timeout: %v is negative", cfg.SampleTimeout))
	}
	if floor := cfg.CollectionInterval + cfg.sampleTimeout(); cfg.Election.TTL != 0 && cfg.Election.TTL <= floor {
		errs = append(errs, fmt.Errorf("election::ttl: %v must exceed collection_interval plus sample_timeout (%v), or the holder's lease runs out between two samples", cfg.Election.TTL, floor))
	}
	return errors.Join(errs...)
}

// sampleTimeout is SampleTimeout with its default.
func (cfg *Config) sampleTimeout() time.Duration {
	if cfg.SampleTimeout <= 0 {
		return queuesampler.DefaultSampleTimeout
	}
	return cfg.SampleTimeout
}

// electionTTL is Election.TTL with its default.
func (cfg *Config) electionTTL() time.Duration {
	if cfg.Election.TTL > 0 {
		return cfg.Election.TTL
	}
	return 3*cfg.CollectionInterval + cfg.sampleTimeout()
}

// Validate checks one database's settings before any connection: the DSN
// parses, TLS is set in one place, and the queue selection is valid. Each
// error names its field.
func (db *DatabaseConfig) Validate() error {
	var errs []error
	if db.DSN == "" {
		errs = append(errs, errors.New("dsn: empty; give a connection string such as postgres://user@host:5432/dbname"))
	} else if _, err := parseDSN(string(db.DSN)); err != nil {
		errs = append(errs, fmt.Errorf("dsn: %w", err))
	}
	if db.TLS != nil && hasSSLParams(string(db.DSN)) {
		errs = append(errs, errors.New("tls: the dsn also sets TLS parameters (sslmode, sslrootcert, ...); set TLS in one place"))
	}
	for _, f := range []struct {
		name string
		opts queuedepth.Options
	}{
		{"queues", queuedepth.Options{Queues: db.Queues}},
		{"include", queuedepth.Options{Include: db.Include}},
		{"exclude", queuedepth.Options{Exclude: db.Exclude}},
		{"exact_count_threshold", queuedepth.Options{ExactCountThreshold: db.ExactCountThreshold}},
		{"lock_timeout", queuedepth.Options{LockTimeout: db.LockTimeout}},
	} {
		if err := f.opts.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// depth is the database's queue selection.
func (db *DatabaseConfig) depth() queuedepth.Options {
	return queuedepth.Options{Queues: db.Queues, Include: db.Include, Exclude: db.Exclude,
		ExactCountThreshold: db.ExactCountThreshold, LockTimeout: db.LockTimeout}
}
