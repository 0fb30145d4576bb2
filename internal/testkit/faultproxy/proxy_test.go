package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet is how long a read waits to show that nothing arrives. A working
// proxy never delivers within it, so it cannot make a test flaky; it only
// bounds how long the test spends proving a negative.
const quiet = 150 * time.Millisecond

// hangGuard turns a hang into a failure; nothing is expected to come near it.
const hangGuard = 10 * time.Second

// startEcho runs a line echo server on loopback until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	addr, stop := startEchoStop(t)
	t.Cleanup(stop)
	return addr
}

// startEchoStop runs a line echo server on loopback; stop ends it and its
// goroutines.
func startEchoStop(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	var once sync.Once
	return ln.Addr().String(), func() {
		once.Do(func() {
			_ = ln.Close()
			mu.Lock()
			for _, c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
}

func listen(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// client is one connection through the proxy, reading lines.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// recv reads one line within wait.
func (c *client) recv(wait time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	s, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return s[:len(s)-1], nil
}

func (c *client) mustRecv(t *testing.T, want string) {
	t.Helper()
	got, err := c.recv(hangGuard)
	if err != nil || got != want {
		t.Fatalf("recv = %q, %v; want %q", got, err, want)
	}
}

// mustStall fails if anything arrives within quiet.
func (c *client) mustStall(t *testing.T) {
	t.Helper()
	got, err := c.recv(quiet)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("recv during a stall = %q, %v; want nothing", got, err)
	}
}

// mustBeClosed fails unless the proxy closed the connection.
func (c *client) mustBeClosed(t *testing.T) {
	t.Helper()
	got, err := c.recv(hangGuard)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("recv on a cut connection = %q, %v; want EOF or reset", got, err)
	}
}

func TestForwards(t *testing.T) {
	p := listen(t, startEcho(t))
	c := dial(t, p.Addr())
	for _, s := range []string{"one", "two", "three"} {
		c.send(t, s)
		c.mustRecv(t, s)
	}
	if n := p.Accepted(); n != 1 {
		t.Fatalf("Accepted = %d, want 1", n)
	}
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns = %d, want 1", n)
	}
}

func TestDelay(t *testing.T) {
	p := listen(t, startEcho(t))
	c := dial(t, p.Addr())
	const d = 100 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	c.send(t, "slow")
	c.mustRecv(t, "slow")
	// A lower bound only: the proxy can never be faster than its delay.
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip %v with a delay of %v each way", rtt, d)
	}

	// A long delay holds data until it is lifted.
	p.SetDelay(time.Hour)
	c.send(t, "held")
	c.mustStall(t)
	p.SetDelay(0)
	c.mustRecv(t, "held")
}

func TestBlackholeStallsAndRestoreDelivers(t *testing.T) {
	p := listen(t, startEcho(t))
	old := dial(t, p.Addr())
	old.send(t, "before")
	old.mustRecv(t, "before")

	if err := p.Blackhole(); err != nil {
		t.Fatal(err)
	}
	old.send(t, "during")
	old.mustStall(t)
	// New connections are accepted but nothing comes back.
	fresh := dial(t, p.Addr())
	fresh.send(t, "hello")
	fresh.mustStall(t)

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	old.mustRecv(t, "during")
	fresh.mustRecv(t, "hello")
}

func TestCutRefusesAndRestoreListensAgain(t *testing.T) {
	p := listen(t, startEcho(t))
	addr := p.Addr()
	old := dial(t, addr)
	old.send(t, "before")
	old.mustRecv(t, "before")

	p.Cut()
	old.mustBeClosed(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatal("a connection was accepted while cut")
	}
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns after Cut = %d", n)
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Fatalf("address changed from %s to %s", addr, p.Addr())
	}
	c := dial(t, addr)
	c.send(t, "after")
	c.mustRecv(t, "after")
}

func TestBlackholeAfterCutListensAgain(t *testing.T) {
	p := listen(t, startEcho(t))
	p.Cut()
	if err := p.Blackhole(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr()) // accepted, not answered
	c.send(t, "x")
	c.mustStall(t)
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	c.mustRecv(t, "x")
}

func TestCloseConnsKeepsAccepting(t *testing.T) {
	p := listen(t, startEcho(t))
	old := dial(t, p.Addr())
	old.send(t, "a")
	old.mustRecv(t, "a")
	p.CloseConns()
	old.mustBeClosed(t)
	c := dial(t, p.Addr())
	c.send(t, "b")
	c.mustRecv(t, "b")
}

func TestTargetDownClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	p := listen(t, dead)
	c := dial(t, p.Addr())
	c.mustBeClosed(t)
}

// Close ends every goroutine whatever state the connections are in: held
// by a delay, stalled in a black hole, or waiting to be dialled.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	echo, stopEcho := startEchoStop(t)
	t.Cleanup(stopEcho)
	p, err := Listen(echo)
	if err != nil {
		t.Fatal(err)
	}
	delayed := dial(t, p.Addr())
	delayed.send(t, "x")
	delayed.mustRecv(t, "x")
	p.SetDelay(time.Hour)
	delayed.send(t, "held by the delay")

	if err := p.Blackhole(); err != nil {
		t.Fatal(err)
	}
	stalled := dial(t, p.Addr())
	stalled.send(t, "held by the black hole")
	deadline := time.Now().Add(hangGuard)
	for p.Conns() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the proxy never accepted the second connection")
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.Restore(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Restore after Close = %v, want net.ErrClosed", err)
	}
	delayed.mustBeClosed(t)
	stalled.mustBeClosed(t)
	stopEcho()
	if err := goleak.Find(before); err != nil {
		t.Fatal(err)
	}
}

// With replies held the target gets every request and acts on it, and the
// client hears nothing until Restore.
func TestHoldRepliesDeliversRequestsOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got <- line[:len(line)-1]
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	p := listen(t, ln.Addr().String())
	c := dial(t, p.Addr())
	c.send(t, "before")
	c.mustRecv(t, "before")
	<-got
	if err := p.HoldReplies(); err != nil {
		t.Fatal(err)
	}
	c.send(t, "commit")
	select {
	case s := <-got:
		if s != "commit" {
			t.Fatalf("target got %q", s)
		}
	case <-time.After(hangGuard):
		t.Fatal("the request did not reach the target")
	}
	c.mustStall(t)
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	c.mustRecv(t, "commit")
	_ = c.Close()
}
