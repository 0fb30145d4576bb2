// Command devstack runs the demo pipeline without Docker: the collector
// (e2e/cmd/otelcol) with the repository's collector-config.yaml, Prometheus
// (/usr/bin/prometheus) with deploy/prometheus (scrape jobs and alert rules)
// and, with -orchestrator, the example orchestrator exporting to them. It
// runs until SIGINT or SIGTERM, then stops everything. scripts/stack.sh is
// the usual entry point.
//
// Everything listens on 127.0.0.1. Grafana is not started: point one at the
// Prometheus URL and import deploy/grafana/dashboards/pgmq-orchestrator.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	var (
		grpcAddr  = flag.String("otlp-grpc", "127.0.0.1:4317", "collector OTLP gRPC listen address")
		httpAddr  = flag.String("otlp-http", "127.0.0.1:4318", "collector OTLP HTTP listen address")
		promExp   = flag.String("exporter", "127.0.0.1:8889", "collector prometheus exporter listen address")
		telemetry = flag.String("telemetry", "127.0.0.1:8888", "collector's own metrics listen address")
		promAddr  = flag.String("prometheus", "127.0.0.1:9090", "Prometheus listen address")
		backend   = flag.String("backend", "127.0.0.1:14317", "OTLP gRPC trace backend (a Jaeger or Tempo), host:port")
		configs   = flag.String("configs", "", "comma-separated extra collector configs merged on top (e.g. collector/tempo.yaml)")
		interval  = flag.Duration("interval", 5*time.Second, "Prometheus scrape and rule evaluation interval")
		dir       = flag.String("dir", "", "directory for logs and the TSDB (default: a new temporary directory, removed on exit)")
		orch      = flag.Bool("orchestrator", false, "also build and run examples/orchestrator (DATABASE_URL from the environment)")
		orchArgs  = flag.String("orchestrator-args", "-processors 4 -rate 5 -work 500ms -health-addr 127.0.0.1:8080", "orchestrator flags")
	)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *dir == "" {
		d, err := os.MkdirTemp("", "pgmqotel-devstack-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	defer stack.RemoveBuild()

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

	fmt.Printf(`pgmqotel dev stack is up (logs in %s)
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
		fmt.Printf("  orchestrator        pid %d, log %s\n", cmd.Process.Pid, filepath.Join(*dir, "orchestrator.log"))
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}()
	}
	fmt.Println("Ctrl-C stops it.")
	<-ctx.Done()
	return nil
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
