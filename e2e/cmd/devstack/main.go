// Command devstack runs the demo pipeline without Docker: the collector
// (e2e/cmd/otelcol) with the repository's collector-config.yaml, Prometheus
// (/usr/bin/prometheus) with deploy/prometheus (scrape jobs and alert rules)
// and, with -orchestrator, the example orchestrator exporting to them. It
// runs until SIGINT or SIGTERM, then stops everything. scripts/stack.sh is
// the usual entry point.
//
// Before starting anything it checks the fixed ports (a busy one fails at
// once, naming its flag) and, with -orchestrator or -pgmq-sql, the
// database: -pgmq-sql applies PGMQ's own SQL install file when PGMQ is
// missing, and without it a missing PGMQ stops the start with the way to
// install it. The Collector is built once into a cache directory
// ($XDG_CACHE_HOME/pgmqotel or ~/.cache/pgmqotel, keyed by a hash of its
// sources; OTELCOL_BIN names a prebuilt one instead). Logs stay in -dir
// after exit.
//
// Everything listens on 127.0.0.1. Grafana is not started: point one at the
// Prometheus URL and import deploy/grafana/dashboards/pgmq-orchestrator.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		grpcAddr  = flag.String("otlp-grpc", "127.0.0.1:4317", "collector OTLP gRPC listen address")
		httpAddr  = flag.String("otlp-http", "127.0.0.1:4318", "collector OTLP HTTP listen address")
		promExp   = flag.String("exporter", "127.0.0.1:8889", "collector prometheus exporter listen address")
		telemetry = flag.String("telemetry", "127.0.0.1:8888", "collector's own metrics listen address")
		promAddr  = flag.String("prometheus", "127.0.0.1:9090", "Prometheus listen address")
		backend   = flag.String("backend", "127.0.0.1:14317", "OTLP gRPC trace backend (a Jaeger or Tempo), host:port")
		configs   = flag.String("configs", "", "comma-separated extra collector configs merged on top (e.g. collector/tempo.yaml)")
		interval  = flag.Duration("interval", 5*time.Second, "Prometheus scrape and rule evaluation interval")
		dir       = flag.String("dir", "", "directory for logs and the TSDB, created if missing and kept on exit (default: a new temporary directory)")
		orch      = flag.Bool("orchestrator", false, "also build and run examples/orchestrator (DATABASE_URL from the environment)")
		pgmqSQL   = flag.String("pgmq-sql", "", "PGMQ's SQL install file (pgmq.sql from a PGMQ release) to apply to DATABASE_URL first, unless PGMQ is already there")
		orchArgs  = flag.String("orchestrator-args", "-processors 4 -rate 5 -work 500ms -health-addr 127.0.0.1:8080", "orchestrator flags")
	)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Relative paths are the caller's: scripts/stack.sh runs this from e2e.
	*dir, *pgmqSQL = callerPath(*dir), callerPath(*pgmqSQL)

	// Fixed ports first: a busy one fails at once, naming its flag.
	if err := checkPorts([]portFlag{
		{"-otlp-grpc", *grpcAddr}, {"-otlp-http", *httpAddr}, {"-exporter", *promExp},
		{"-telemetry", *telemetry}, {"-prometheus", *promAddr},
	}); err != nil {
		return err
	}
	if *orch || *pgmqSQL != "" {
		if err := preparePGMQ(ctx, *pgmqSQL, *orch); err != nil {
			return err
		}
	}

	if *dir == "" {
		d, err := os.MkdirTemp("", "pgmqotel-devstack-")
		if err != nil {
			return err
		}
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("-dir: %w", err)
	}
	// Logs stay for reading after Ctrl-C.
	defer fmt.Printf("devstack: stopped; logs kept in %s\n", *dir)

	if os.Getenv("OTELCOL_BIN") == "" {
		root, err := stack.RepoRoot()
		if err != nil {
			return err
		}
		bin, err := cachedCollector(ctx, filepath.Join(root, "e2e"), func(f string, a ...any) { fmt.Printf(f, a...) })
		if err != nil {
			return err
		}
		// stack.CollectorBinary takes a prebuilt binary from OTELCOL_BIN.
		if err := os.Setenv("OTELCOL_BIN", bin); err != nil {
			return err
		}
	}

	var extra []string
	if *configs != "" {
		extra = strings.Split(*configs, ",")
	}
	col, err := stack.StartCollector(ctx, stack.CollectorOptions{
		Dir: *dir, Configs: extra, BackendEndpoint: *backend,
		GRPCAddr: *grpcAddr, HTTPAddr: *httpAddr, PromAddr: *promExp, TelemetryAddr: *telemetry,
	})
	if err != nil {
		return err
	}
	defer stopAll("collector", col.Stop)

	prom, err := stack.StartPrometheus(ctx, stack.PrometheusOptions{Dir: *dir, Collector: col, Interval: *interval, ListenAddr: *promAddr})
	if err != nil {
		return err
	}
	defer stopAll("prometheus", prom.Stop)

	fmt.Printf(`pgmqotel dev stack is up (logs in %s, kept on exit)
  collector OTLP      grpc %s, http %s (traces to %s)
  app metrics         http://%s/metrics
  Prometheus          %s (alerts: %s/alerts)
  application env     %s OTEL_SERVICE_NAME=orchestrator
`, *dir, col.GRPCAddr, col.HTTPAddr, col.BackendAddr, col.PromAddr, prom.URL, prom.URL, strings.Join(col.OTLPEnv(), " "))

	if *orch {
		cmd, err := startOrchestrator(ctx, *dir, col, strings.Fields(*orchArgs))
		if err != nil {
			return err
		}
		fmt.Printf("  orchestrator        pid %d, log %s, health http://%s/healthz\n",
			cmd.Process.Pid, filepath.Join(*dir, "orchestrator.log"), healthAddr(*orchArgs))
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}()
	}
	fmt.Println("Ctrl-C stops it.")
	<-ctx.Done()
	return nil
}

// portFlag is a fixed listen address and the flag that set it.
type portFlag struct{ flag, addr string }

// checkPorts fails on the first address that cannot be bound, naming its
// flag, instead of letting a server retry on a port that stays busy.
func checkPorts(ports []portFlag) error {
	for _, p := range ports {
		lis, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s %s is not free (%v): stop what listens there or pick another address with %s", p.flag, p.addr, err, p.flag)
		}
		_ = lis.Close()
	}
	return nil
}

// preparePGMQ checks the database at DATABASE_URL: it applies PGMQ's SQL
// install file when given one and PGMQ is missing, and fails plainly, with
// the way to install PGMQ, when the orchestrator would run without it.
func preparePGMQ(ctx context.Context, sqlFile string, orchestrator bool) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is not set: -orchestrator and -pgmq-sql need the database (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres)")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return fmt.Errorf("database at DATABASE_URL is unreachable: %w", err)
	}
	defer conn.Close(context.Background())
	where := describeURL(conn)
	if sqlFile != "" {
		applied, state, err := installPGMQ(ctx, conn, sqlFile)
		switch {
		case err != nil:
			return err
		case applied:
			fmt.Printf("pgmq: installed PGMQ into %s from %s (%s)\n", where, sqlFile, state.How)
		default:
			fmt.Printf("pgmq: PGMQ is already installed in %s (%s); -pgmq-sql %s not applied\n", where, state.How, sqlFile)
		}
		return nil
	}
	state, err := checkPGMQ(ctx, conn)
	if err != nil {
		return fmt.Errorf("check PGMQ in %s: %w", where, err)
	}
	if !state.Installed && orchestrator {
		return errors.New(pgmqMissingHelp(where))
	}
	fmt.Printf("pgmq: %s has PGMQ (%s)\n", where, state.How)
	return nil
}

// callerPath resolves a relative path against DEVSTACK_CALLER_DIR, the
// directory scripts/stack.sh was started from.
func callerPath(p string) string {
	if base := os.Getenv("DEVSTACK_CALLER_DIR"); p != "" && base != "" && !filepath.IsAbs(p) {
		return filepath.Join(base, p)
	}
	return p
}

// healthAddr returns the -health-addr in the orchestrator's flags.
func healthAddr(args string) string {
	f := strings.Fields(args)
	for i, a := range f {
		if v, ok := strings.CutPrefix(a, "-health-addr="); ok {
			return v
		}
		if a == "-health-addr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "127.0.0.1:8080"
}

// startOrchestrator builds the example orchestrator of the root module and
// starts it with the OTLP variables pointing at the collector.
func startOrchestrator(ctx context.Context, dir string, col *stack.Collector, args []string) (*exec.Cmd, error) {
	root, err := stack.RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "orchestrator")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/orchestrator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build orchestrator: %w\n%s", err, out)
	}
	logFile, err := os.Create(filepath.Join(dir, "orchestrator.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), col.OTLPEnv()...)
	cmd.Env = append(cmd.Env, "OTEL_SERVICE_NAME=orchestrator", "OTEL_METRIC_EXPORT_INTERVAL=5000")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start orchestrator: %w", err), logFile.Close())
	}
	return cmd, nil
}

// stopAll stops a server with a bounded grace period and reports failures.
func stopAll(name string, stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "devstack: stop %s: %v\n", name, err)
	}
}
