// Command devstack runs the demo pipeline without Docker: the collector
// (e2e/cmd/otelcol) with the repository's collector-config.yaml, Prometheus
// (/usr/bin/prometheus) with deploy/prometheus (scrape jobs and alert
// rules), Jaeger v2 as the trace backend (e2e/tools/jaeger, built into the
// cache the first time; -jaeger=false or -backend replace it) and, with
// -orchestrator, the example orchestrator exporting to them. It runs until
// SIGINT or SIGTERM, then stops everything. scripts/stack.sh is the usual
// entry point.
//
// Before starting anything it checks the fixed ports (a busy one fails at
// once, naming its flag) and, with -orchestrator or -pgmq-sql, the
// database. Without DATABASE_URL, -orchestrator starts a throwaway
// PostgreSQL cluster (pgserver.go) and installs PGMQ from -pgmq-sql, else
// the pgmq extension, else the project's PGMQ-compatible schema, which it
// names as not PGMQ (prepare.go). With DATABASE_URL, -pgmq-sql applies
// PGMQ's own SQL install file when PGMQ is missing, and without it a
// missing PGMQ stops the start with the way to install it. The Collector
// is built once into a cache directory ($XDG_CACHE_HOME/pgmqotel or
// ~/.cache/pgmqotel, keyed by a hash of its sources; OTELCOL_BIN names a
// prebuilt one instead). Logs stay in -dir after exit.
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

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.CommandLine
	var (
		grpcAddr  = fs.String("otlp-grpc", "127.0.0.1:4317", "collector OTLP gRPC listen address")
		httpAddr  = fs.String("otlp-http", "127.0.0.1:4318", "collector OTLP HTTP listen address")
		promExp   = fs.String("exporter", "127.0.0.1:8889", "collector prometheus exporter listen address")
		telemetry = fs.String("telemetry", "127.0.0.1:8888", "collector's own metrics listen address")
		promAddr  = fs.String("prometheus", "127.0.0.1:9090", "Prometheus listen address")
		jaeger    = fs.Bool("jaeger", true, "start Jaeger v2 as the trace backend (built into the cache the first time: about 8 minutes); -jaeger=false skips it")
		jaegerUI  = fs.String("jaeger-ui", "127.0.0.1:16686", "Jaeger's query API (and UI, where the build has it) listen address")
		backend   = fs.String("backend", "", "an OTLP gRPC trace backend of your own (Jaeger, Tempo), host:port; Jaeger is then not started")
		configs   = fs.String("configs", "", "comma-separated extra collector configs merged on top (e.g. collector/tempo.yaml)")
		interval  = fs.Duration("interval", 5*time.Second, "Prometheus scrape and rule evaluation interval")
		dir       = fs.String("dir", "", "directory for logs and the TSDB, created if missing and kept on exit (default: a new temporary directory)")
		orch      = fs.Bool("orchestrator", false, "also build and run examples/orchestrator, on DATABASE_URL or, without it, on a throwaway PostgreSQL cluster")
		pgmqSQL   = fs.String("pgmq-sql", "", "PGMQ's SQL install file (pgmq.sql from a PGMQ release) to apply first, unless PGMQ is already there")
		orchArgs  = fs.String("orchestrator-args", "-processors 4 -rate 5 -work 500ms -health-addr 127.0.0.1:8080", "orchestrator flags")
	)
	fs.Usage = usage(fs.Output(), fs)
	_ = fs.Parse(os.Args[1:]) // ExitOnError

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Relative paths are the caller's: scripts/stack.sh runs this from e2e.
	*dir, *pgmqSQL = callerPath(*dir), callerPath(*pgmqSQL)

	// Fixed ports first: a busy one fails at once, naming its flag.
	ports := []portFlag{
		{"-otlp-grpc", *grpcAddr}, {"-otlp-http", *httpAddr}, {"-exporter", *promExp},
		{"-telemetry", *telemetry}, {"-prometheus", *promAddr},
	}
	if *jaeger && *backend == "" {
		ports = append(ports, portFlag{"-jaeger-ui", *jaegerUI})
	}
	if err := checkPorts(ports); err != nil {
		return err
	}
	dbURL := os.Getenv("DATABASE_URL")
	throwaway := *orch && dbURL == ""
	if dbURL == "" && !throwaway && *pgmqSQL != "" {
		return errors.New("DATABASE_URL is not set: -pgmq-sql without -orchestrator installs into DATABASE_URL (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres)")
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

	var pg *pgServer
	if throwaway {
		fmt.Println("postgres: no DATABASE_URL: starting a throwaway PostgreSQL cluster (removed at exit)...")
		var err error
		if pg, err = startPGServer(ctx, *dir); err != nil {
			return err
		}
		defer stopAll("throwaway PostgreSQL", pg.stop)
		fmt.Printf("postgres: %s (data in %s, removed at exit; log %s)\n", pg.URL, pg.home, pg.LogPath)
		dbURL = pg.URL
	}
	var pgmq pgmqState
	if *orch || *pgmqSQL != "" {
		var err error
		if pgmq, err = preparePGMQ(ctx, dbURL, *pgmqSQL, *orch, throwaway); err != nil {
			return err
		}
	}

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

	traces, err := startTraces(ctx, *dir, *jaeger, *jaegerUI, *backend, func(f string, a ...any) { fmt.Printf(f, a...) })
	if err != nil {
		return err
	}
	if traces.Jaeger != nil {
		defer stopAll("jaeger", traces.Jaeger.Stop)
	}

	extra := traces.Configs
	if *configs != "" {
		extra = append(extra, strings.Split(*configs, ",")...)
	}
	col, err := stack.StartCollector(ctx, stack.CollectorOptions{
		Dir: *dir, Configs: extra, BackendEndpoint: traces.Endpoint,
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

	fmt.Print(banner{
		Dir: *dir, GRPCAddr: col.GRPCAddr, HTTPAddr: col.HTTPAddr, PromAddr: col.PromAddr, PromURL: prom.URL,
		Traces: traces, OTLPEnv: col.OTLPEnv(), DB: pg, PGMQ: pgmq, Orchestrator: *orch,
	})

	if *orch {
		cmd, err := startOrchestrator(ctx, *dir, col, strings.Fields(*orchArgs), dbURL)
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
// starts it on the database at dbURL with the OTLP variables pointing at
// the collector.
func startOrchestrator(ctx context.Context, dir string, col *stack.Collector, args []string, dbURL string) (*exec.Cmd, error) {
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
	cmd.Env = append(cmd.Env, "DATABASE_URL="+dbURL, "OTEL_SERVICE_NAME=orchestrator", "OTEL_METRIC_EXPORT_INTERVAL=5000")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own: Ctrl-C in a terminal signals the whole
	// foreground group, and the orchestrator, which takes a second signal
	// as "stop at once", would get devstack's SIGTERM on top of the
	// terminal's SIGINT and die before its last summary and export.
	// devstack alone is interrupted and sends it one SIGTERM; SIGTERM too
	// if devstack dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
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
