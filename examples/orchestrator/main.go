// Command orchestrator is a small but complete orchestrator built on PGMQ
// and instrumented with otelmetrics and otelpgmq. It is meant to be read
// and copied.
//
// A producer enqueues task requests at a steady rate; a pool of processors
// reads them, works on each (a timer stands in for real work) and archives
// it on success. A failed message is left alone and becomes visible again
// once its visibility timeout has passed, so another processor retries it.
//
// Every message is traced from its send to its processing (one trace: the
// process span is the send span's child) and the messaging metrics are
// recorded. Active processors, connection pool utilization and queue depth
// are exported over OTLP, configured by the standard OTEL_* variables, and
// served as JSON on the health endpoint (default
// http://127.0.0.1:8080/healthz). A one-line summary is logged every few
// seconds.
//
// Usage:
//
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 \
//	OTEL_SERVICE_NAME=orchestrator \
//	orchestrator -processors 4 -rate 5 -work 500ms
//
// SIGINT or SIGTERM stops it: production stops, work in progress may finish
// within -grace, the last metric values are exported, and it exits 0. A
// second signal ends it at once. Invalid flags exit 2; a failure to start
// exits 1. An unreachable database is not a failure: the orchestrator keeps
// retrying and reports the database as unhealthy on /healthz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// defaultDatabaseURL is used when DATABASE_URL is not set.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres"

// Limits of the numeric flags. They keep typos (an extra zero) from turning
// a demo into a load test.
const (
	maxProcessors = 1000
	maxRate       = 10000 // messages per second
)

// Config is the orchestrator's configuration: DATABASE_URL and the flags.
// The OTEL_* variables are read by package otelsetup.
type Config struct {
	DatabaseURL string        // DATABASE_URL
	Queue       string        // -queue: PGMQ queue, created if missing
	Processors  int           // -processors: concurrent processors; 0 runs none
	Rate        float64       // -rate: messages produced per second; 0 produces none
	Work        time.Duration // -work: time one message takes
	FailRate    float64       // -fail-rate: fraction of messages that fail, 0 to 1
	VT          time.Duration // -vt: visibility timeout of a read message
	Duration    time.Duration // -duration: stop after this long; 0 runs until signalled
	HealthAddr  string        // -health-addr: address of the /healthz endpoint
	Summary     time.Duration // -summary: time between summary lines; 0 logs none
	Grace       time.Duration // -grace: how long work in progress may go on after a stop
	MaxConns    int32         // -max-conns: pool size; 0 picks one (see poolConfig)
	Notify      string        // -notify: "auto" (or "") waits on insert notifications when PGMQ has them; "off" polls

	// spanProcessor, when set, sees every span next to the exporter (tests).
	spanProcessor sdktrace.SpanProcessor
	// hooks, when set, adjust the wiring (tests).
	hooks *testHooks
}

// testHooks adjust run's wiring for tests.
type testHooks struct {
	metricsOptions []otelmetrics.Option // added to otelmetrics.New's
}

// ConfigError reports an invalid flag or environment variable. It is found
// before the orchestrator touches the database.
type ConfigError struct {
	Name   string // the flag, with its dash, or the variable
	Value  string
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Name, e.Value, e.Reason)
}

// parseConfig reads the flags in args and DATABASE_URL. Flag syntax errors
// are printed to stderr with the usage; -h and -help return flag.ErrHelp.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	cfg := Config{DatabaseURL: os.Getenv("DATABASE_URL")}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = defaultDatabaseURL
	}
	fs := flag.NewFlagSet("orchestrator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Processors, "processors", 4, "concurrent processors (0 runs none and only reports)")
	fs.Float64Var(&cfg.Rate, "rate", 5, "messages produced per second (0 produces none)")
	fs.DurationVar(&cfg.Work, "work", 500*time.Millisecond, "time each message takes")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0 runs until SIGINT/SIGTERM)")
	fs.StringVar(&cfg.Queue, "queue", "task_requests", "PGMQ queue, created if missing")
	fs.StringVar(&cfg.HealthAddr, "health-addr", "127.0.0.1:8080", "listen address of the health endpoint /healthz")
	fs.Float64Var(&cfg.FailRate, "fail-rate", 0.05, "fraction of messages that fail, 0 to 1 (they are retried after -vt)")
	fs.DurationVar(&cfg.VT, "vt", 30*time.Second, "visibility timeout: how long a read message stays hidden (whole seconds, rounded up)")
	fs.DurationVar(&cfg.Summary, "summary", 5*time.Second, "time between summary lines (0 logs none)")
	fs.DurationVar(&cfg.Grace, "grace", 10*time.Second, "how long work in progress may go on after a stop")
	fs.StringVar(&cfg.Notify, "notify", "auto", "how idle processors learn of new messages: auto (insert notifications when PGMQ has them, else polling) or off (polling)")
	maxConns := fs.Int("max-conns", 0, "connection pool size (0: pool_max_conns of DATABASE_URL if set, else processors+2)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: orchestrator [flags]\n\n"+
			"Environment: DATABASE_URL (default %s) and the OTEL_* variables.\n\nFlags:\n", defaultDatabaseURL)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, &ConfigError{Name: "argument", Value: fs.Arg(0), Reason: "the orchestrator takes flags only"}
	}
	if *maxConns < 0 || *maxConns > math.MaxInt32 {
		return Config{}, &ConfigError{Name: "-max-conns", Value: fmt.Sprint(*maxConns), Reason: "must be 0 or a positive pool size"}
	}
	cfg.MaxConns = int32(*maxConns)
	return cfg, cfg.validate()
}

// validate checks every value, so that a bad one is reported by name before
// anything starts.
func (c Config) validate() error {
	bad := func(name string, value any, reason string) error {
		return &ConfigError{Name: name, Value: fmt.Sprint(value), Reason: reason}
	}
	switch {
	case c.Processors < 0 || c.Processors > maxProcessors:
		return bad("-processors", c.Processors, fmt.Sprintf("must be between 0 and %d", maxProcessors))
	case math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > maxRate:
		return bad("-rate", c.Rate, fmt.Sprintf("must be between 0 and %d messages per second", maxRate))
	case c.Work < 0:
		return bad("-work", c.Work, "must not be negative")
	case math.IsNaN(c.FailRate) || c.FailRate < 0 || c.FailRate > 1:
		return bad("-fail-rate", c.FailRate, "must be between 0 and 1")
	case c.VT <= 0:
		return bad("-vt", c.VT, "must be positive")
	case c.VT <= c.Work:
		// Otherwise a message becomes visible again while it is being
		// worked on and a second processor takes it.
		return bad("-vt", c.VT, fmt.Sprintf("must be longer than -work (%v)", c.Work))
	case c.Duration < 0:
		return bad("-duration", c.Duration, "must not be negative")
	case c.Summary < 0:
		return bad("-summary", c.Summary, "must not be negative")
	case c.Grace < 0:
		return bad("-grace", c.Grace, "must not be negative")
	case c.Notify != "" && c.Notify != "auto" && c.Notify != "off":
		return bad("-notify", c.Notify, "must be auto or off")
	}
	if err := pgmqclient.ValidateQueueName(c.Queue); err != nil {
		return bad("-queue", c.Queue, err.Error())
	}
	if _, _, err := net.SplitHostPort(c.HealthAddr); err != nil {
		return bad("-health-addr", c.HealthAddr, "want host:port: "+err.Error())
	}
	if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		// The value may hold a password: name the variable, not its value.
		return &ConfigError{Name: "DATABASE_URL", Value: "(hidden)", Reason: err.Error()}
	}
	return nil
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain is main without os.Exit, so tests can run it whole: it returns
// the exit code.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var cerr *ConfigError
	if errors.As(err, &cerr) {
		fmt.Fprintln(stderr, "orchestrator:", err)
	}
	if err != nil {
		return 2 // the flag package has printed its own message
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling so that a
	// second one ends the process at once.
	context.AfterFunc(ctx, stop)

	ln, err := net.Listen("tcp", cfg.HealthAddr)
	if err != nil {
		fmt.Fprintln(stderr, "orchestrator: health endpoint:", err)
		return 1
	}
	if err := run(ctx, cfg, ln, stdout); err != nil {
		fmt.Fprintln(stderr, "orchestrator:", err)
		return 1
	}
	return 0
}
