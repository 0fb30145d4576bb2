// Package faultproxy is a TCP proxy for tests that puts network faults
// between a client and a real server on the loopback interface: added
// latency, a black hole that accepts connections but forwards nothing,
// held replies (requests reach the server, answers do not come back), and a
// cut that closes every connection and refuses new ones. Restore heals all
// of them on the same address, so the client under test never needs to be
// reconfigured.
//
// Faults are set and healed from the test goroutine while traffic flows;
// every method is safe for concurrent use. Close ends every goroutine the
// proxy started before it returns.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// mode is what the proxy does with traffic.
type mode int

const (
	modePass        mode = iota // forward, after the configured delay
	modeBlackhole               // accept, then hold everything until Restore
	modeCut                     // listener closed, connections closed
	modeHoldReplies             // forward the client's data, hold the target's
)

// Proxy forwards TCP connections from a loopback address to a target.
type Proxy struct {
	target string
	addr   string // fixed at Listen; Restore listens on it again after Cut
	ctx    context.Context
	cancel context.CancelFunc // ends pending dials at Close

	mu       sync.Mutex
	ln       net.Listener // nil while cut or closed
	mode     mode
	delay    time.Duration
	changed  chan struct{} // closed and replaced at every change, to wake held data
	links    map[*link]struct{}
	accepted int64
	closed   bool

	wg sync.WaitGroup // every goroutine started by the proxy
}

// Listen starts a proxy on 127.0.0.1 with a free port, forwarding every
// connection to target (host:port). It forwards until told otherwise.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  target,
		addr:    ln.Addr().String(),
		ctx:     ctx,
		cancel:  cancel,
		ln:      ln,
		changed: make(chan struct{}),
		links:   map[*link]struct{}{},
	}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr returns the proxy's address, host:port. It stays the same across
// Cut and Restore.
func (p *Proxy) Addr() string { return p.addr }

// SetDelay holds every chunk of data, in either direction, for d before
// forwarding it, so a request-response round trip takes at least 2d. Data
// already held waits out the new delay, counted from when it was read.
// Zero removes the delay.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = max(d, 0)
	p.signal()
}

// Blackhole makes the proxy accept connections but forward nothing: open
// connections stall with their data held, and new ones are accepted without
// the target being dialled, like a peer behind a dropped route. Restore
// delivers what was held. After Cut, Blackhole listens again first.
func (p *Proxy) Blackhole() error {
	return p.setMode(modeBlackhole)
}

// HoldReplies forwards what clients send but holds what the target answers
// until Restore: the server acts on a request (a transaction commits)
// while its reply is lost on the way, like a connection that breaks after
// the request went out. A client that gives up and closes its connection
// never sees the held reply.
func (p *Proxy) HoldReplies() error {
	return p.setMode(modeHoldReplies)
}

// Restore forwards again: it ends a black hole or held replies, delivering the held data,
// and after Cut listens again on the same address. The delay is kept.
func (p *Proxy) Restore() error {
	return p.setMode(modePass)
}

func (p *Proxy) setMode(m mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("faultproxy: %w", net.ErrClosed)
	}
	if p.ln == nil {
		// SO_REUSEADDR (set by Go) lets the port be bound again although
		// the closed connections linger in TIME_WAIT.
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	p.mode = m
	p.signal()
	return nil
}

// Cut closes every connection and the listener, so new connections are
// refused, like a server that went away. Restore (or Blackhole) listens
// again on the same address.
func (p *Proxy) Cut() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.mode = modeCut
	ln, links := p.detach()
	p.mu.Unlock()
	closeAll(ln, links)
}

// CloseConns closes the open connections but keeps accepting new ones, like
// a server that dropped its sessions and came straight back.
func (p *Proxy) CloseConns() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	closeAll(nil, links)
}

// Conns returns the number of client connections open now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Accepted returns the number of client connections accepted so far.
func (p *Proxy) Accepted() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close closes the listener and every connection and returns once every
// goroutine of the proxy has ended. Later calls do nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	ln, links := p.detach()
	p.mu.Unlock()
	closeAll(ln, links)
	p.wg.Wait()
	return nil
}

// detach takes the listener and the connections out of the proxy, for the
// caller to close outside the lock. Called with mu held.
func (p *Proxy) detach() (net.Listener, []*link) {
	ln := p.ln
	p.ln = nil
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.signal()
	return ln, links
}

func closeAll(ln net.Listener, links []*link) {
	if ln != nil {
		_ = ln.Close()
	}
	for _, l := range links {
		l.close()
	}
}

// signal wakes everything waiting for a change. Called with mu held.
func (p *Proxy) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// accept serves one listener until Cut or Close closes it.
func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				_ = ln.Close() // not expected on loopback; stop rather than spin
			}
			return
		}
		l := &link{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed || p.ln != ln {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.links[l] = struct{}{}
		p.accepted++
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// serve dials the target for one client connection and copies both ways.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer p.forget(l)
	// In a black hole the target is not dialled until Restore.
	if !p.hold(l, time.Time{}, false) {
		return
	}
	var d net.Dialer
	srv, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		l.close()
		return
	}
	if !l.setServer(srv) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.copy(l, srv, l.client, false)
	}()
	p.copy(l, l.client, srv, true)
}

func (p *Proxy) forget(l *link) {
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// copy forwards src to dst chunk by chunk, holding each as the faults say;
// reply says src is the target. Either side ending ends the whole link.
func (p *Proxy) copy(l *link, dst, src net.Conn, reply bool) {
	defer l.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(l, time.Now(), reply) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold waits until data read at readAt may be forwarded: the delay has
// passed and the proxy forwards data of its direction (reply: from the
// target). It returns false when the link was closed meanwhile. A zero
// readAt skips the delay.
func (p *Proxy) hold(l *link, readAt time.Time, reply bool) bool {
	for {
		p.mu.Lock()
		m, delay, changed := p.mode, p.delay, p.changed
		p.mu.Unlock()
		if !readAt.IsZero() {
			if wait := time.Until(readAt.Add(delay)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-changed: // the delay may have changed
				case <-l.done:
					t.Stop()
					return false
				}
				t.Stop()
				continue
			}
		}
		if m == modePass || (m == modeHoldReplies && !reply) {
			return true
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

// link is one proxied connection: the client's side and, once dialled, the
// target's.
type link struct {
	client net.Conn
	done   chan struct{} // closed by close
	once   sync.Once

	mu     sync.Mutex
	server net.Conn
}

// setServer attaches the dialled connection; if the link was closed
// meanwhile it closes srv and returns false.
func (l *link) setServer(srv net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		_ = srv.Close()
		return false
	default:
	}
	l.server = srv
	return true
}

func (l *link) close() {
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		srv := l.server
		l.mu.Unlock()
		_ = l.client.Close()
		if srv != nil {
			_ = srv.Close()
		}
	})
}
