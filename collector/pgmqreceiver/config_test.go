package pgmqreceiver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// loadConfig reads receiver id of testdata/config.yaml through the
// Collector's resolver (file and env providers, so ${env:...} expands) into
// the factory's default configuration.
func loadConfig(t *testing.T, id component.ID) *Config {
	t.Helper()
	r, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:              []string{"file:" + filepath.Join("testdata", "config.yaml")},
		ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
		DefaultScheme:     "env",
	})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := r.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conf.Sub(id.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("unmarshal %s: %v", id, err)
	}
	return cfg
}

func TestLoadConfig(t *testing.T) {
	const dsn = "postgres://monitor:s3cret@db.example:5432/app?sslmode=verify-full"
	t.Setenv("PGMQ_TEST_DSN", dsn)

	t.Run("defaults and env expansion", func(t *testing.T) {
		cfg := loadConfig(t, component.NewID(metadata.Type))
		if err := confmap.Validate(cfg); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if len(cfg.Databases) != 1 || string(cfg.Databases[0].DSN) != dsn {
			t.Fatalf("databases %+v, want the DSN from the environment", cfg.Databases)
		}
		if cfg.CollectionInterval != DefaultCollectionInterval || cfg.SampleTimeout != queuesampler.DefaultSampleTimeout ||
			!cfg.Election.Enabled || cfg.Election.TTL != 0 || !cfg.Metrics.PgmqQueueSentMessages.Enabled {
			t.Fatalf("defaults not kept: %+v", cfg)
		}
		if got := cfg.electionTTL(); got != 3*DefaultCollectionInterval+queuesampler.DefaultSampleTimeout {
			t.Fatalf("derived TTL %v", got)
		}
	})

	t.Run("every field", func(t *testing.T) {
		cfg := loadConfig(t, component.NewIDWithName(metadata.Type, "custom"))
		if err := confmap.Validate(cfg); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if cfg.CollectionInterval != 30*time.Second || cfg.SampleTimeout != 5*time.Second || cfg.Election.TTL != 2*time.Minute || !cfg.Election.Enabled {
			t.Fatalf("receiver settings: %+v", cfg)
		}
		if cfg.Metrics.PgmqQueueSentMessages.Enabled || !cfg.Metrics.PgmqQueueDepth.Enabled {
			t.Fatalf("metrics: %+v", cfg.Metrics)
		}
		d0, d1 := cfg.Databases[0], cfg.Databases[1]
		if d0.TLS != nil || strings.Join(d0.Include, ",") != "orders_*" || strings.Join(d0.Exclude, ",") != "orders_tmp_*" {
			t.Fatalf("database 0: %+v", d0)
		}
		if d1.TLS == nil || d1.TLS.CAFile != "/etc/ssl/db2-ca.pem" || strings.Join(d1.Queues, ",") != "invoices,refunds" ||
			d1.ExactCountThreshold != 1000 || d1.LockTimeout != 250*time.Millisecond {
			t.Fatalf("database 1: %+v", d1)
		}
	})

	t.Run("env inside a DSN", func(t *testing.T) {
		t.Setenv("PGMQ_TEST_PASSWORD", "s3cret")
		cfg := loadConfig(t, component.NewIDWithName(metadata.Type, "embedded"))
		if err := confmap.Validate(cfg); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if got := string(cfg.Databases[0].DSN); got != "postgres://monitor:s3cret@db.example:5432/app?sslmode=disable" {
			t.Fatalf("dsn %q", got)
		}
	})

	t.Run("election off", func(t *testing.T) {
		cfg := loadConfig(t, component.NewIDWithName(metadata.Type, "no_election"))
		if err := confmap.Validate(cfg); err != nil || cfg.Election.Enabled {
			t.Fatalf("election %+v, %v", cfg.Election, err)
		}
	})
}

// Bad input is refused before any connection, by a message naming the
// field, as the Collector prints it (the path joined by "::").
func TestConfigErrorsNameTheField(t *testing.T) {
	db := func(dsn string) DatabaseConfig { return DatabaseConfig{DSN: configopaque.String(dsn)} }
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"empty list", func(c *Config) { c.Databases = nil }, "databases: at least one database is required"},
		{"empty dsn", func(c *Config) { c.Databases = []DatabaseConfig{db("")} }, "databases::0: dsn: empty"},
		{"bad dsn", func(c *Config) {
			c.Databases = []DatabaseConfig{db("postgres://u@h/d"), db("postgres://u@h:notaport/d")}
		}, "databases::1: dsn: cannot parse"},
		{"bad keyword dsn", func(c *Config) { c.Databases = []DatabaseConfig{db("host=h port=99999999")} }, "databases::0: dsn:"},
		{"interval below the minimum", func(c *Config) { c.CollectionInterval = 500 * time.Millisecond }, "collection_interval: 500ms is below the minimum of 1s"},
		{"negative sample timeout", func(c *Config) { c.SampleTimeout = -time.Second }, "sample_timeout: -1s is negative"},
		{"TTL too short", func(c *Config) { c.Election.TTL = 11 * time.Second }, "election::ttl: 11s must exceed collection_interval plus sample_timeout (12s)"},
		{"TLS twice", func(c *Config) {
			d := db("postgres://u@h/d?sslmode=verify-full")
			d.TLS = &configtls.ClientConfig{}
			c.Databases = []DatabaseConfig{d}
		}, "databases::0: tls: the dsn also sets TLS parameters"},
		{"bad queue name", func(c *Config) {
			d := db("postgres://u@h/d")
			d.Queues = []string{"orders;drop"}
			c.Databases = []DatabaseConfig{d}
		}, "databases::0: queues:"},
		{"bad pattern", func(c *Config) {
			d := db("postgres://u@h/d")
			d.Exclude = []string{"[a-"}
			c.Databases = []DatabaseConfig{d}
		}, "databases::0: exclude:"},
		{"negative threshold", func(c *Config) {
			d := db("postgres://u@h/d")
			d.ExactCountThreshold = -1
			c.Databases = []DatabaseConfig{d}
		}, "databases::0: exact_count_threshold:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			cfg.Databases = []DatabaseConfig{db("postgres://u@h/d")}
			tc.change(cfg)
			err := confmap.Validate(cfg)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// A DSN that fails to parse is reported without its password.
func TestBadDSNErrorHidesThePassword(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Databases = []DatabaseConfig{{DSN: "postgres://monitor:s3cret@db.example:notaport/app"}}
	err := confmap.Validate(cfg)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
}
