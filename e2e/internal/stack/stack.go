package stack

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds every wait of the testing helpers. Generous: the
// machine may be busy with race-enabled builds.
var DefaultTimeout = 90 * time.Second

// buildTimeout bounds the first collector build (about a minute cold).
const buildTimeout = 10 * time.Minute

// Stack is a running collector and a Prometheus scraping it.
type Stack struct {
	Collector  *Collector
	Prometheus *Prometheus
	Dir        string // temporary directory with logs, configs and the TSDB
	interval   time.Duration
}

// Option adjusts Start.
type Option func(*options)

type options struct {
	configs  []string
	backend  string
	env      []string
	interval time.Duration
}

// WithCollectorConfigs merges extra collector configuration files (paths
// relative to the repository root or absolute) on top of collector-config.yaml.
func WithCollectorConfigs(files ...string) Option {
	return func(o *options) { o.configs = append(o.configs, files...) }
}

// WithBackend sets the OTLP trace backend endpoint (host:port). By default
// it is a local port nobody listens on.
func WithBackend(endpoint string) Option {
	return func(o *options) { o.backend = endpoint }
}

// WithCollectorEnv adds NAME=value pairs to the collector's environment.
func WithCollectorEnv(kv ...string) Option {
	return func(o *options) { o.env = append(o.env, kv...) }
}

// WithScrapeInterval sets Prometheus' scrape and evaluation interval (1s by default).
func WithScrapeInterval(d time.Duration) Option {
	return func(o *options) { o.interval = d }
}

// Start builds the collector (once per process), starts it and a Prometheus
// scraping it, waits until both serve and Prometheus has scraped the
// collector once, and stops both in t.Cleanup. It fails the test on error.
func Start(t testing.TB, opts ...Option) *Stack {
	t.Helper()
	o := options{interval: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	RequireTool(t, "prometheus", "PROMETHEUS_BIN", "/usr/bin/prometheus")
	s := &Stack{Dir: t.TempDir(), interval: o.interval} // removed after the cleanup below has stopped the servers
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()

	c, err := StartCollector(ctx, CollectorOptions{Dir: s.Dir, Configs: o.configs, BackendEndpoint: o.backend, Env: o.env})
	if err != nil {
		t.Fatal(err)
	}
	s.Collector = c
	t.Cleanup(func() { s.stop(t) })

	p, err := StartPrometheus(ctx, PrometheusOptions{Dir: s.Dir, Collector: c, Interval: o.interval})
	if err != nil {
		t.Fatal(err)
	}
	s.Prometheus = p
	s.WaitForSamples(t, `up{job="otel-collector"} == 1`, 1)
	return s
}

// ScrapeInterval returns Prometheus' scrape and rule evaluation interval.
func (s *Stack) ScrapeInterval() time.Duration { return s.interval }

func (s *Stack) stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.Prometheus != nil {
		if t.Failed() {
			t.Logf("--- prometheus log (tail) ---\n%s", s.Prometheus.LogTail(30))
		}
		if err := s.Prometheus.Stop(ctx); err != nil {
			t.Errorf("stop prometheus: %v", err)
		}
	}
	if t.Failed() {
		t.Logf("--- collector log (tail) ---\n%s", s.Collector.LogTail(60))
	}
	if err := s.Collector.Stop(ctx); err != nil {
		t.Errorf("stop collector: %v\n%s", err, s.Collector.LogTail(30))
	}
}

// SetOTLPEnv points an in-process OpenTelemetry SDK at the collector with
// t.Setenv (so the test cannot run in parallel).
func (s *Stack) SetOTLPEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Collector.OTLPEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// QueryInstant runs an instant PromQL query now and fails the test on error.
func (s *Stack) QueryInstant(t testing.TB, promql string) []Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	got, err := s.Prometheus.Query(ctx, promql)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// WaitForSamples polls promql until it returns at least min samples, and
// returns them. It fails the test after DefaultTimeout.
func (s *Stack) WaitForSamples(t testing.TB, promql string, min int) []Sample {
	t.Helper()
	var got []Sample
	WaitFor(t, DefaultTimeout, fmt.Sprintf("%d sample(s) of %s", min, promql), func(ctx context.Context) error {
		var err error
		if got, err = s.Prometheus.Query(ctx, promql); err != nil {
			return err
		}
		if len(got) < min {
			return fmt.Errorf("%d sample(s) so far", len(got))
		}
		return nil
	})
	return got
}

// WaitForRules polls GET /api/v1/rules until every rule has been evaluated
// (health is not "unknown") and returns them; it fails the test if none are
// loaded, or on timeout. Check Health == "ok" on the result.
func (s *Stack) WaitForRules(t testing.TB) []Rule {
	t.Helper()
	var rules []Rule
	WaitFor(t, DefaultTimeout, "rules loaded and evaluated", func(ctx context.Context) error {
		var err error
		if rules, err = s.Prometheus.Rules(ctx); err != nil {
			return err
		}
		if len(rules) == 0 {
			return fmt.Errorf("no rules loaded")
		}
		for _, r := range rules {
			if r.Health == "unknown" || r.Health == "" {
				return fmt.Errorf("rule %s not evaluated yet", r.Name)
			}
		}
		return nil
	})
	return rules
}

// WaitFor calls cond every 100ms until it returns nil and fails the test
// with cond's last error when timeout passes first. cond gets a context
// that ends at the deadline.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := poll(ctx, "wait for "+what, nil, cond); err != nil {
		t.Fatal(err)
	}
}

// Main runs the tests of a package using the harness and then removes the
// collector binary it built: func TestMain(m *testing.M) { stack.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	RemoveBuild()
	os.Exit(code)
}

// RequireTool makes sure an external program the tests run is installed:
// the path in the environment variable env, else def. Where it is missing
// the test is skipped with a hint, as the database tests are without a
// server, except under CI, where it fails.
func RequireTool(t testing.TB, name, env, def string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		bin = def
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("%s not found (%v): install Debian's prometheus package (apt-get install prometheus) or set %s", name, err, env)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}
