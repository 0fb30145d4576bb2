package queuesampler

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler/internal/election"
)

// Role says whether this replica reports the queue figures.
type Role string

// Roles.
const (
	// RoleSampler: this replica samples the queues (it holds the election
	// lease, or the election is off).
	RoleSampler Role = "sampler"
	// RoleStandby: another replica holds the lease, or this replica's
	// exports fail while another's work; it reports no queue figures and
	// tries to take over at each sample.
	RoleStandby Role = "standby"
	// RoleUnknown: no sample has completed yet, or the last one failed
	// before the election could be decided.
	RoleUnknown Role = "unknown"
	// RoleReadOnly: the sampler's database accepts no writes (a hot
	// standby), so this replica cannot hold the lease and reports no queue
	// figures; the replicas on the primary elect the sampler. A Conn
	// pointing at the primary makes it eligible.
	RoleReadOnly Role = "read_only"
)

// Sample is the immutable result of one sampling attempt.
type Sample struct {
	// At is the local clock when the attempt ended.
	At time.Time
	// Role is this replica's role in the attempt; Reason says why it is
	// not the sampler ("held", "unhealthy", "read_only", "lost",
	// "untrusted").
	Role   Role
	Reason string
	// Op and Err say what failed (OpConnect, OpElect, OpSample); Err is
	// nil for a successful attempt.
	Op  string
	Err error
	// Queues are the figures, for RoleSampler only.
	Queues []queuedepth.Queue

	term election.Term // the term sampled in; zero without election
}

// Stats count what a Sampler did, for tests and benchmarks.
type Stats struct {
	Attempts int64 // attempts made (not reused samples)
	Queries  int64 // depth samples sent to the database
	Connects int64 // connections opened: more than one means reconnections
	Sampling bool  // an attempt is running now
}

// Sampler samples one database's queues on a connection of its own,
// once across the replicas that share the database (an election on a
// lease row), at most once per minimum interval however many callers ask.
// The latest result is kept for Last and reused by Get until the interval
// has passed. Its methods are safe for concurrent use.
type Sampler struct {
	cfg     Config
	depth   *queuedepth.Sampler
	elector *election.Elector // nil without election

	sem      chan struct{}
	last     atomic.Pointer[Sample]
	attempts atomic.Int64
	queries  atomic.Int64
	connects atomic.Int64
	sampling atomic.Bool
	failures failures

	// Guarded by sem.
	conn   conn
	closed bool // Close ran: no more connections, no more elections
}

// New validates cfg and returns a Sampler. It performs no I/O: the
// sampler connects at the first Get.
func New(cfg Config) (*Sampler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := cfg.Depth
	// Let the server give up a little before the sample's own deadline,
	// so a slow statement ends there and the session is kept.
	opts.StatementTimeout = max(cfg.SampleTimeout*9/10, time.Millisecond)
	opts.KeepPrepared = true
	depth, err := queuedepth.New(opts)
	if err != nil {
		return nil, fmt.Errorf("queuesampler: %w", err)
	}
	s := &Sampler{cfg: cfg, depth: depth, sem: make(chan struct{}, 1),
		conn: conn{src: cfg.Conn}, failures: failures{onError: cfg.OnError}}
	if !cfg.NoElection {
		store := election.NewPostgres(&s.conn, election.WithStatementTimeout(opts.StatementTimeout), election.WithCreateTable(!cfg.NoElectionDDL))
		el, err := election.New(store, election.Config{Key: cfg.ElectionKey, TTL: cfg.ElectionTTL, Healthy: cfg.ExportHealthy})
		if err != nil {
			return nil, fmt.Errorf("queuesampler: election: %w", err)
		}
		s.elector = el
	}
	return s, nil
}

// Server identifies the sampled database by the semantic conventions'
// server.address, server.port and db.namespace, from the connection
// config (the first host when it names several).
type Server struct {
	Address   string
	Port      int
	Namespace string
}

// Server returns the database the sampler connects to.
func (s *Sampler) Server() Server {
	cc := s.cfg.Conn.ConnConfig
	return Server{Address: cc.Host, Port: int(cc.Port), Namespace: cc.Database}
}

// ElectionKey is the key of the sampler's election.
func (s *Sampler) ElectionKey() int64 { return s.cfg.ElectionKey }

// Stats returns what the sampler did so far.
func (s *Sampler) Stats() Stats {
	return Stats{Attempts: s.attempts.Load(), Queries: s.queries.Load(), Connects: s.connects.Load(), Sampling: s.sampling.Load()}
}

// Failures returns the failures counted so far, by error.type: failed
// attempts, and queues of successful samples that could not be sampled
// (a named queue that does not exist is not counted).
func (s *Sampler) Failures() []Failure { return s.failures.snapshot() }

// Last returns the latest sample, or nil before the first and after Close.
func (s *Sampler) Last() *Sample { return s.last.Load() }

// errClosed is what Get says after Close.
var errClosed = errors.New("queuesampler: closed")

// Get returns a sample no older than the minimum interval, taking one if
// needed. Concurrent callers wait for the one in progress, but never past
// their own context. The attempt itself runs detached from ctx, under the
// sample timeout: a caller that stops waiting (a health check's short
// budget) never cancels a statement, which would make pgx close the
// sampler's connection.
func (s *Sampler) Get(ctx context.Context) (*Sample, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.closed {
		<-s.sem
		return nil, errClosed
	}
	if last := s.last.Load(); last != nil && s.cfg.Now().Sub(last.At) < s.cfg.MinInterval {
		<-s.sem
		return last, nil
	}
	done := make(chan *Sample, 1)
	s.sampling.Store(true)
	go func() {
		defer func() { <-s.sem }()
		defer s.sampling.Store(false)
		sample := s.sample()
		s.attempts.Add(1)
		s.last.Store(sample)
		done <- sample
	}()
	select {
	case sample := <-done:
		return sample, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reportable reports whether sample's queue figures may be exported now:
// it succeeded, as the sampler, in a term this replica still trusts (held,
// and its lease written healthy, so no other replica can be reporting).
func (s *Sampler) Reportable(sample *Sample) bool {
	return s.Current(sample) && (s.elector == nil || s.elector.Trusted(sample.term))
}

// Current reports whether sample's queue figures are this replica's to
// show in process (a health endpoint): it succeeded, as the sampler, in a
// term this replica still holds, healthy or not. A lone replica whose
// exports fail still shows its queues.
func (s *Sampler) Current(sample *Sample) bool {
	if sample == nil || sample.Err != nil || sample.Role != RoleSampler {
		return false
	}
	return s.elector == nil || s.elector.Holds(sample.term)
}

// sample makes one attempt under the sample timeout. A connection that
// was open before the attempt and turns out dead (the server's
// idle_session_timeout, a restart, a pooler's recycling) is replaced and
// the attempt made again at once, once. Called with sem held.
func (s *Sampler) sample() *Sample {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SampleTimeout)
	defer cancel()
	reused := s.conn.live()
	sample := s.attempt(ctx)
	if sample.Err != nil && reused && !s.conn.live() && ctx.Err() == nil {
		sample = s.attempt(ctx)
	}
	if sample.Err != nil {
		s.failures.add(sample.Op, sample.Err)
	}
	return sample
}

// attempt connects if needed, takes part in the election and, as leader,
// samples. Called with sem held.
func (s *Sampler) attempt(ctx context.Context) *Sample {
	if !s.conn.live() {
		s.connects.Add(1)
	}
	if err := s.conn.ensure(ctx); err != nil {
		return s.failed(OpConnect, err)
	}
	var term election.Term
	if s.elector != nil {
		st, err := s.elector.Step(ctx)
		switch {
		case st.State == election.Leader:
			// A store error while the term is still held is not counted
			// here: the sample on the same connection fails and is counted
			// (one failure per attempt), or the dead connection is
			// replaced and the attempt made again (sample).
			term = st.Term
		case st.Reason == election.ReasonReadOnly:
			// Not a failure: replicas on the primary elect the sampler.
			s.failures.reportOnce("read_only", fmt.Errorf("queuesampler: this replica's database is read-only (a hot standby?), so it never samples; point its connection at the primary to make it eligible: %w", err))
			return &Sample{At: s.cfg.Now(), Role: RoleReadOnly, Reason: string(st.Reason)}
		case err != nil:
			switch {
			case errors.Is(err, election.ErrNotInstalled):
				err = fmt.Errorf("%w; run queuesampler.ElectionDDL (deploy/postgres/election-lease.sql) once as a role that may create it, and grant the sampler's role access (queuesampler.ElectionGrantSQL)", err)
			case errors.Is(err, election.ErrNotPermitted):
				err = fmt.Errorf("%w; grant the sampler's role access (deploy/postgres/monitor-role.sql or queuesampler.ElectionGrantSQL)", err)
			}
			return s.failed(OpElect, fmt.Errorf("queuesampler: election: %w", err))
		default:
			s.failures.ok()
			return &Sample{At: s.cfg.Now(), Role: RoleStandby, Reason: string(st.Reason)}
		}
	}
	s.queries.Add(1)
	qs, err := s.depth.Sample(ctx, s.conn.conn)
	if err != nil {
		return s.failed(OpSample, fmt.Errorf("queuesampler: %w", err))
	}
	s.failures.ok()
	if s.elector != nil && !s.elector.Holds(term) {
		// The term ended while the sample ran (this process was frozen,
		// or the database was slow past the trust window): its figures
		// may overlap another leader's.
		return &Sample{At: s.cfg.Now(), Role: RoleStandby, Reason: string(election.ReasonUntrusted)}
	}
	s.failures.queueFailures(qs)
	return &Sample{At: s.cfg.Now(), Role: RoleSampler, term: term, Queues: qs}
}

// failed is a failed attempt's sample; sample counts and reports it.
func (s *Sampler) failed(op string, err error) *Sample {
	return &Sample{At: s.cfg.Now(), Role: RoleUnknown, Op: op, Err: err}
}

// Close resigns the election, releasing the lease through the sampler's
// connection (reconnecting if it died, so the lease is freed even through
// a pooler), and ends the session. It is idempotent; Get fails after it.
func (s *Sampler) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SampleTimeout+time.Second)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("queuesampler: close: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.closed {
		return nil
	}
	s.closed = true
	s.last.Store(nil)
	var errs []error
	if s.elector != nil && s.elector.Status().State == election.Leader {
		rctx, rcancel := context.WithTimeout(ctx, s.cfg.SampleTimeout)
		if err := s.conn.ensure(rctx); err != nil {
			errs = append(errs, fmt.Errorf("queuesampler: close: release the election lease (it expires by itself): %w", err))
		} else if err := s.elector.Resign(rctx); err != nil {
			errs = append(errs, fmt.Errorf("queuesampler: close: %w", err))
		}
		rcancel()
	}
	errs = append(errs, s.conn.close(ctx))
	return errors.Join(errs...)
}

// Resign ends this replica's term, if it leads, and releases the lease,
// so another replica takes over at its next sample; this one stands for
// election again at its next Get. Samples of the ended term are no longer
// reported, even from memory.
func (s *Sampler) Resign(ctx context.Context) error {
	if s.elector == nil {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	if !s.conn.live() {
		return nil // the lease expires by itself
	}
	return s.elector.Resign(ctx)
}

// Leading reports whether this replica holds the election lease (always
// true without election).
func (s *Sampler) Leading() bool {
	return s.elector == nil || s.elector.Status().State == election.Leader
}
