package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a child server whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid once done is closed
}

// startProcess runs bin with args and env (added to a copy of the
// environment without OTEL_* variables, which belong to the test's SDK, not
// to the servers), logging to logPath.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(childEnv(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	tieToParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// exited reports whether the process has ended, with its exit error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop asks the process to shut down (SIGTERM) and kills it when ctx ends
// first. It returns the shutdown error, if the process reported one.
func (p *process) stop(ctx context.Context) error {
	if done, _ := p.exited(); done {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exitErr *exec.ExitError
		if errors.As(p.waitErr, &exitErr) && exitErr.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM {
			return nil // terminated by the signal itself: a clean stop for our purposes
		}
		if p.waitErr != nil {
			return fmt.Errorf("stop %s: %w", p.name, p.waitErr)
		}
		return nil
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("stop %s: killed after %w", p.name, ctx.Err())
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (p *process) kill() error {
	if done, _ := p.exited(); done {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// logTail returns the last n lines of the process log.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freeAddr returns 127.0.0.1:<port> with a port that was free a moment ago.
// Another process may take it before the server binds it; starts retry
// with new ports when a server dies during startup.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freeAddrs(n int) ([]string, error) {
	// Hold all listeners until every port is chosen so they are distinct.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return p
}

func host(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// poll calls check every interval until it returns nil, ctx ends, or the
// process p (if any) exits. The error names what was awaited and carries
// check's last error.
func poll(ctx context.Context, what string, p *process, check func(context.Context) error) error {
	const interval = 100 * time.Millisecond
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	// One check may not eat the whole deadline (a server that accepts but
	// never answers), and the error reported is the last one a check
	// finished with, not the deadline that cut the final attempt short.
	const perCheck = 10 * time.Second
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, perCheck)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if p != nil {
			if done, err := p.exited(); done {
				return fmt.Errorf("%s: %s exited (%v) during startup: last check: %w\n--- %s log ---\n%s",
					what, p.name, err, last, p.name, p.logTail(40))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w: last check: %w", what, ctx.Err(), last)
		case <-ticker.C:
		}
	}
}
