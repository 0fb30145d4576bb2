package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

func TestMain(m *testing.M) { stack.Main(m) }

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildDevstack builds the command as scripts/stack.sh does and returns
// it with the Collector binary for OTELCOL_BIN.
func buildDevstack(t *testing.T, ctx context.Context) (bin, collector string) {
	t.Helper()
	stack.RequireTool(t, "prometheus", "PROMETHEUS_BIN", "/usr/bin/prometheus")
	collector, err := stack.CollectorBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(t.TempDir(), "devstack")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build devstack: %v\n%s", err, out)
	}
	return bin, collector
}

// The real command, as scripts/stack.sh runs it: a -dir that does not
// exist yet is created, the stack comes up on the given ports, and after
// SIGINT the logs are still there and the last line says where. With
// -jaeger=false and no -backend, a span sent to it stays in the Collector
// (its debug exporter logs it) instead of being retried against a backend
// that is not there.
func TestDevstackCreatesDirAndKeepsLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, collector := buildDevstack(t, ctx)
	dir := filepath.Join(t.TempDir(), "not", "yet", "there")
	r := startDevstack(t, bin, dir, collector, nil, func([]string) []string { return []string{"-jaeger=false"} })
	if got := line(t, r.out.String(), "traces"); !strings.Contains(got, "not exported") {
		t.Errorf("traces line: %s", got)
	}
	sendSpan(t, ctx, r.addrs[0], "devstack-test", "no-backend")
	stack.WaitFor(t, time.Minute, "the collector's debug exporter to log the span", func(context.Context) error {
		if b, _ := os.ReadFile(filepath.Join(dir, "collector-0.log")); !strings.Contains(string(b), `"spans": 1`) {
			return fmt.Errorf("no span in the collector log yet")
		}
		return nil
	})
	r.interrupt(t)
	lines := strings.Split(strings.TrimSpace(r.out.String()), "\n")
	if last := lines[len(lines)-1]; last != "devstack: stopped; logs kept in "+dir {
		t.Errorf("last line %q", last)
	}
	for _, name := range []string{"collector-0.log", "prometheus-0.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("log not kept: %v", err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "collector-0.log")); strings.Contains(string(b), "connection refused") {
		t.Errorf("the collector tried a trace backend:\n%s", b)
	}
}

// -h names scripts/stack.sh, the command a person runs, not the temporary
// binary it builds, and lists the flags.
func TestDevstackUsageNamesTheScript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, _ := buildDevstack(t, ctx)
	out, err := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "Usage: scripts/stack.sh [flags]\n") || strings.Contains(string(out), bin) ||
		!strings.Contains(string(out), "-jaeger-ui") {
		t.Errorf("-h says:\n%s", out)
	}
}

// requireJaeger skips the test, with the way to build Jaeger, where its
// build is not cached; under CI (.ci/run builds it first) it fails.
func requireJaeger(t *testing.T) {
	t.Helper()
	bin, cached, err := stack.JaegerCached()
	if err != nil {
		t.Fatal(err)
	}
	if !cached {
		msg := fmt.Sprintf("Jaeger is not built (%s): cd e2e && go run ./cmd/jaegerbin (about 8 minutes once)", bin)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// By default the stack has a trace backend: Jaeger, with its query API
// (and UI, where the build has one) on -jaeger-ui, printed in the banner.
// A span sent to the Collector reaches it, the Collector never meets a
// refused connection, and Jaeger stops with the rest.
func TestDevstackTracesReachJaeger(t *testing.T) {
	requireJaeger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, collector := buildDevstack(t, ctx)
	dir := t.TempDir()
	r := startDevstack(t, bin, dir, collector, nil, func(a []string) []string { return []string{"-jaeger-ui", a[5]} })
	ui := "http://" + r.addrs[5]
	if got := line(t, r.out.String(), "traces"); !strings.Contains(got, "Jaeger") || !strings.Contains(got, ui) {
		t.Errorf("traces line without Jaeger at %s:\n%s", ui, got)
	}
	sendSpan(t, ctx, r.addrs[0], "devstack-test", "to-jaeger")
	j := &stack.Jaeger{QueryURL: ui}
	stack.WaitFor(t, time.Minute, "the span in Jaeger", func(ctx context.Context) error {
		traces, err := j.Traces(ctx, "devstack-test", "to-jaeger", 5)
		if err != nil {
			return err
		}
		if len(traces) == 0 {
			return fmt.Errorf("no trace yet")
		}
		return nil
	})
	r.interrupt(t)
	if b, _ := os.ReadFile(filepath.Join(dir, "collector-0.log")); strings.Contains(string(b), "connection refused") {
		t.Errorf("the collector met a refused connection:\n%s", b)
	}
	if c, err := net.DialTimeout("tcp", r.addrs[5], time.Second); err == nil {
		c.Close()
		t.Errorf("Jaeger still listens on %s after the stop", r.addrs[5])
	}
}

// One command on a machine with PostgreSQL's server programs and no
// database set up: -orchestrator without DATABASE_URL runs on a throwaway
// cluster with PGMQ from what is at hand, every summary line of the
// orchestrator says which (the compat schema as not PGMQ), and after the
// stop neither the server nor its data is left.
func TestDevstackOrchestratorOnThrowawayCluster(t *testing.T) {
	requireServerPrograms(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin, collector := buildDevstack(t, ctx)
	dir := t.TempDir()
	r := startDevstack(t, bin, dir, collector, []string{"DATABASE_URL="}, func(a []string) []string {
		return []string{"-jaeger=false", "-orchestrator",
			"-orchestrator-args", "-processors 2 -rate 5 -work 50ms -summary 500ms -health-addr " + a[6]}
	})
	db := line(t, r.out.String(), "PostgreSQL")
	m := regexp.MustCompile(`throwaway, postgres://postgres@127\.0\.0\.1:(\d+)/postgres\?sslmode=disable \(PGMQ: ([^;]+);`).FindStringSubmatch(db)
	if m == nil {
		t.Fatalf("PostgreSQL line: %s", db)
	}
	port, install := m[1], m[2]
	if install != compatHow && !strings.HasPrefix(install, "extension ") {
		t.Errorf("PGMQ came as %q", install)
	}
	data := regexp.MustCompile(`\(data in (\S+), removed at exit`).FindStringSubmatch(r.out.String())
	if data == nil {
		t.Fatalf("no data directory named:\n%s", r.out.String())
	}
	want := fmt.Sprintf("pgmq=%q", install)
	orchLog := filepath.Join(dir, "orchestrator.log")
	var summaries []string
	stack.WaitFor(t, 4*time.Minute, "three summary lines with messages processed", func(context.Context) error {
		b, _ := os.ReadFile(orchLog)
		summaries = summaries[:0]
		for l := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(l, "msg=summary") {
				summaries = append(summaries, l)
			}
		}
		if len(summaries) < 3 || strings.Contains(summaries[len(summaries)-1], "processed=0 ") {
			return fmt.Errorf("%d summary lines so far:\n%s", len(summaries), b)
		}
		return nil
	})
	for _, l := range summaries {
		if !strings.Contains(l, want) || !strings.Contains(l, "database=ok") {
			t.Errorf("summary line without %s and database=ok: %s", want, l)
		}
	}
	// Ctrl-C signals the terminal's whole foreground group: the database
	// must outlive the orchestrator's shutdown all the same ...
	r.interruptGroup(t)
	b, _ := os.ReadFile(orchLog)
	stopped := regexp.MustCompile(`(?m)^.*msg=stopped .*$`).FindString(string(b))
	if !strings.Contains(stopped, "database=ok") {
		t.Errorf("the orchestrator's last summary does not find its database up:\n%s", b)
	}
	// ... and the Collector must outlive its last export.
	if strings.Contains(string(b), "did not finish in time") || strings.Contains(string(b), "nothing listens at the endpoint") {
		t.Errorf("the orchestrator's last export did not reach the Collector:\n%s", b)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Errorf("the throwaway PostgreSQL still listens on port %s after the stop", port)
	}
	if _, err := os.Stat(data[1]); !os.IsNotExist(err) {
		t.Errorf("its data %s is still there after the stop (%v)", data[1], err)
	}
}

// sendSpan sends one span of service, named name, to the Collector's
// OTLP gRPC receiver at addr, and waits until it is accepted.
func sendSpan(t *testing.T, ctx context.Context, addr, service, name string) {
	t.Helper()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	_, span := tp.Tracer("devstack-test").Start(ctx, name)
	span.End() // exported now: a syncer
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("send span to %s: %v", addr, err)
	}
}

// devstackRun is a devstack started by startDevstack.
type devstackRun struct {
	cmd   *exec.Cmd
	done  chan error
	out   *lockedBuffer
	addrs []string // -otlp-grpc, -otlp-http, -exporter, -telemetry, -prometheus, then two spare
}

// interrupt sends SIGINT to devstack and waits for the exit.
func (r *devstackRun) interrupt(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
}

// interruptGroup sends SIGINT to devstack's process group, as Ctrl-C in a
// terminal does (devstack and every child that stays in its group), and
// waits for the exit.
func (r *devstackRun) interruptGroup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
}

// wait waits for devstack's exit after a signal.
func (r *devstackRun) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatalf("devstack after SIGINT: %v\n%s", err, r.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("devstack did not stop within a minute of SIGINT\n%s", r.out.String())
	}
}

// startDevstack runs devstack on fixed ports until it reports the stack up
// (with -orchestrator: until it reports the orchestrator started). env is
// added to the environment; extra gives more flags, from the addresses
// chosen (two spare ones follow the five the stack's flags take).
// Fixed ports can still be taken by another program between choosing and
// binding them; a run that exits before it is up for that reason (its
// output says "address already in use" or "is not free") is retried on
// new ports, at most three times. Any other early exit fails the test at
// once, with the output.
func startDevstack(t *testing.T, bin, dir, collector string, env []string, extra func(addrs []string) []string) *devstackRun {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		addrs, err := stack.FixedAddrs(7)
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-dir", dir, "-interval", "1s",
			"-otlp-grpc", addrs[0], "-otlp-http", addrs[1], "-exporter", addrs[2], "-telemetry", addrs[3], "-prometheus", addrs[4]},
			extra(addrs)...)
		upWhen := "dev stack is up"
		if slices.Contains(args, "-orchestrator") {
			upWhen = "  orchestrator        pid"
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(os.Environ(), "OTELCOL_BIN="+collector), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, as a terminal gives it
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var exited error
		stack.WaitFor(t, 4*time.Minute, "the stack to come up", func(context.Context) error {
			select {
			case err := <-done:
				exited = fmt.Errorf("devstack exited before the stack was up: %v", err)
				return nil
			default:
			}
			if s := out.String(); !strings.Contains(s, upWhen) {
				return &notYet{s}
			}
			return nil
		})
		if exited == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGINT) // let it stop what it started
				select {
				case <-done:
				case <-time.After(time.Minute):
					_ = cmd.Process.Kill()
					<-done
				}
			})
			return &devstackRun{cmd: cmd, done: done, out: out, addrs: addrs}
		}
		s := out.String()
		busy := strings.Contains(s, "address already in use") || strings.Contains(s, "is not free")
		if !busy || attempt == attempts {
			t.Fatalf("%v (attempt %d of %d)\n%s", exited, attempt, attempts, s)
		}
		t.Logf("attempt %d: a port was taken before devstack bound it; retrying on new ports", attempt)
	}
}

type notYet struct{ out string }

func (e *notYet) Error() string { return "not up yet; output so far:\n" + e.out }
