package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// The real command, as scripts/stack.sh runs it: a -dir that does not
// exist yet is created, the stack comes up on the given ports, and after
// SIGINT the logs are still there and the last line says where.
func TestDevstackCreatesDirAndKeepsLogs(t *testing.T) {
	stack.RequireTool(t, "prometheus", "PROMETHEUS_BIN", "/usr/bin/prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	collector, err := stack.CollectorBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "devstack")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build devstack: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "not", "yet", "there")
	cmd, done, out := startDevstack(t, bin, dir, collector)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("devstack after SIGINT: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("devstack did not stop within a minute of SIGINT\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; last != "devstack: stopped; logs kept in "+dir {
		t.Errorf("last line %q", last)
	}
	for _, name := range []string{"collector-0.log", "prometheus-0.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("log not kept: %v", err)
		}
	}
}

// startDevstack runs devstack on fixed ports until it reports the stack up.
// Fixed ports can still be taken by another program between choosing and
// binding them; a run that exits before it is up for that reason (its
// output says "address already in use" or "is not free") is retried on
// new ports, at most three times. Any other early exit fails the test at
// once, with the output.
func startDevstack(t *testing.T, bin, dir, collector string) (*exec.Cmd, chan error, *lockedBuffer) {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		addrs, err := stack.FixedAddrs(5)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-dir", dir, "-interval", "1s",
			"-otlp-grpc", addrs[0], "-otlp-http", addrs[1], "-exporter", addrs[2], "-telemetry", addrs[3], "-prometheus", addrs[4])
		cmd.Env = append(os.Environ(), "OTELCOL_BIN="+collector)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var exited error
		stack.WaitFor(t, 2*time.Minute, "the stack to come up", func(context.Context) error {
			select {
			case err := <-done:
				exited = fmt.Errorf("devstack exited before the stack was up: %v", err)
				return nil
			default:
			}
			if s := out.String(); !strings.Contains(s, "dev stack is up") {
				return &notYet{s}
			}
			return nil
		})
		if exited == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			return cmd, done, out
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
