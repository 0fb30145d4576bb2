package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"
)

// CollectorOptions configures StartCollector.
type CollectorOptions struct {
	// Dir receives the collector log (collector.log). Required.
	Dir string
	// Configs are extra configuration files merged, in order, on top of the
	// repository's collector-config.yaml (for example collector/tempo.yaml).
	Configs []string
	// BackendEndpoint is the OTLP trace backend (OTLP_BACKEND_ENDPOINT).
	// Empty means a free local port nobody listens on: the harness proves
	// that a dead backend does not hold up metrics.
	BackendEndpoint string
	// Env holds extra NAME=value pairs for the collector process.
	Env []string
	// GRPCAddr, HTTPAddr, PromAddr and TelemetryAddr fix the listen
	// addresses (host:port); empty ones get a free 127.0.0.1 port.
	GRPCAddr, HTTPAddr, PromAddr, TelemetryAddr string
}

// Collector is a running collector started by StartCollector. Addresses are
// host:port on 127.0.0.1.
type Collector struct {
	GRPCAddr      string // OTLP gRPC receiver
	HTTPAddr      string // OTLP HTTP receiver
	PromAddr      string // prometheus exporter (GET /metrics)
	TelemetryAddr string // the collector's own metrics (GET /metrics)
	BackendAddr   string // where traces are exported
	LogPath       string
	proc          *process
}

// startAttempts bounds restarts after a port taken between choosing and binding it.
const startAttempts = 3

// StartCollector builds (once) and starts the collector with the shipped
// configuration and fresh ports, and waits until it serves. Stop it with Stop.
func StartCollector(ctx context.Context, opts CollectorOptions) (*Collector, error) {
	if opts.Dir == "" {
		return nil, errors.New("start collector: CollectorOptions.Dir is required")
	}
	bin, err := CollectorBinary(ctx)
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	args := []string{"--config", filepath.Join(root, "collector-config.yaml")}
	for _, c := range opts.Configs {
		if !filepath.IsAbs(c) {
			c = filepath.Join(root, c)
		}
		args = append(args, "--config", c)
	}
	var lastErr error
	for attempt := range startAttempts {
		c, err := startCollectorOnce(ctx, bin, args, opts, attempt)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startCollectorOnce(ctx context.Context, bin string, args []string, opts CollectorOptions, attempt int) (*Collector, error) {
	addrs, err := freeAddrs(5)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		GRPCAddr:      cmp.Or(opts.GRPCAddr, addrs[0]),
		HTTPAddr:      cmp.Or(opts.HTTPAddr, addrs[1]),
		PromAddr:      cmp.Or(opts.PromAddr, addrs[2]),
		TelemetryAddr: cmp.Or(opts.TelemetryAddr, addrs[3]),
		BackendAddr:   opts.BackendEndpoint,
		LogPath:       filepath.Join(opts.Dir, fmt.Sprintf("collector-%d.log", attempt)),
	}
	if c.BackendAddr == "" {
		c.BackendAddr = addrs[4] // chosen free, and nothing will listen there
	}
	env := append([]string{
		"OTLP_GRPC_ENDPOINT=" + c.GRPCAddr,
		"OTLP_HTTP_ENDPOINT=" + c.HTTPAddr,
		"PROMETHEUS_EXPORTER_ENDPOINT=" + c.PromAddr,
		"OTLP_BACKEND_ENDPOINT=" + c.BackendAddr,
		"COLLECTOR_TELEMETRY_HOST=" + host(c.TelemetryAddr),
		"COLLECTOR_TELEMETRY_PORT=" + port(c.TelemetryAddr),
	}, opts.Env...)
	c.proc, err = startProcess("collector", bin, args, env, c.LogPath)
	if err != nil {
		return nil, err
	}
	if err := poll(ctx, "wait for the collector", c.proc, c.ready); err != nil {
		_ = c.Stop(context.Background())
		return nil, err
	}
	return c, nil
}

// ready reports whether every listener of the collector answers.
func (c *Collector) ready(ctx context.Context) error {
	for _, u := range []string{"http://" + c.PromAddr + "/metrics", "http://" + c.TelemetryAddr + "/metrics"} {
		if err := httpOK(ctx, u); err != nil {
			return err
		}
	}
	for _, a := range []string{c.GRPCAddr, c.HTTPAddr} {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return err
		}
		_ = conn.Close()
	}
	return nil
}

// OTLPEnv returns the OTEL_* variables that point an OpenTelemetry SDK (in a
// child process, or via SetOTLPEnv in this one) at the collector over gRPC.
func (c *Collector) OTLPEnv() []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + c.GRPCAddr,
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_EXPORTER_OTLP_INSECURE=true",
	}
}

// Exited reports whether the collector process has ended, and how.
func (c *Collector) Exited() (bool, error) { return c.proc.exited() }

// LogTail returns the last n lines of the collector log.
func (c *Collector) LogTail(n int) string { return c.proc.logTail(n) }

// PID is the collector's process id.
func (c *Collector) PID() int { return c.proc.cmd.Process.Pid }

// Kill ends the collector with SIGKILL, as a crash or an OOM kill would:
// no shutdown, no lease released. It returns once the process has exited.
func (c *Collector) Kill() error { return c.proc.kill() }

// Stop shuts the collector down gracefully, killing it if ctx ends first.
func (c *Collector) Stop(ctx context.Context) error { return c.proc.stop(ctx) }

// httpOK GETs url and expects 200.
func httpOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
