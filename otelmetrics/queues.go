package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pgmqotel/pgmqotel/internal/election"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// SamplerRole says whether this instance reports the queue metrics.
type SamplerRole string

// Sampler roles.
const (
	// RoleSampler: this instance samples the queues (it holds the election
	// lease, or election is off).
	RoleSampler SamplerRole = "sampler"
	// RoleStandby: this instance does not lead the election (another
	// holds the lease, or its own exports fail); it reports no queue
	// metrics and tries to take over at each collection.
	RoleStandby SamplerRole = "standby"
	// RoleUnknown: no sample has completed yet, or the last one failed
	// before the election could be decided.
	RoleUnknown SamplerRole = "unknown"
	// RoleReadOnly: the sampler's database accepts no writes (a hot
	// standby), so this instance cannot hold the election lease and
	// reports no queue metrics; the replicas on the primary elect the
	// sampler. WithSamplerConfig pointing at the primary makes it eligible.
	RoleReadOnly SamplerRole = "read_only"
)

// queueSample is the immutable result of one sampling attempt.
type queueSample struct {
	at     time.Time // local clock when the attempt ended
	role   SamplerRole
	reason string        // why not the sampler, from the election
	term   election.Term // the term sampled in; zero without election
	op     string        // what failed, with err
	err    error
	depths []pgmqclient.QueueDepth
	attrs  []*queueAttrs // parallel to depths
}

// queueAttrs are one queue's attribute sets, computed once per queue name.
// The depth's sets also say how each value was obtained (see
// queue_export.go).
type queueAttrs struct {
	queue     metric.MeasurementOption
	visible   depthAttrs
	invisible depthAttrs
}

func newQueueAttrs(name string) *queueAttrs {
	sys := attribute.String(AttrMessagingSystem, "pgmq")
	dst := attribute.String(AttrDestinationName, name)
	return &queueAttrs{
		queue:     metric.WithAttributeSet(attribute.NewSet(sys, dst)),
		visible:   newDepthAttrs(sys, dst, attribute.String(AttrMessageState, "visible")),
		invisible: newDepthAttrs(sys, dst, attribute.String(AttrMessageState, "invisible")),
	}
}

// queueSampler samples PGMQ on a dedicated connection. One attempt runs at
// a time (sem); the latest result is published for the callback and
// Snapshot, and reused until the minimum interval has passed.
type queueSampler struct {
	cfg     config
	elector *election.Elector // nil when the election is off
	key     int64

	sem     chan struct{}
	last    atomic.Pointer[queueSample]
	samples atomic.Int64 // attempts made, for tests and benchmarks
	queries atomic.Int64 // queue-depth samples sent

	// Guarded by sem.
	conn      *samplerConn
	attrCache map[string]*queueAttrs
	closed    bool // close ran: no more connections, no more elections

	failures failureCounts

	queueReports queueReports // per-queue errors handed to otel.Handle; guarded by sem
	cardinality  cardinalityCheck
}

func newQueueSampler(cfg config) (*queueSampler, error) {
	for _, q := range cfg.queues {
		if err := pgmqclient.ValidateQueueName(q); err != nil {
			return nil, fmt.Errorf("otelmetrics: queue sampling: %w", err)
		}
	}
	if err := validateQueuePatterns(cfg); err != nil {
		return nil, err
	}
	src := cfg.samplerConfig
	if src == nil {
		src = cfg.queuePool.Config()
	}
	opts := pgmqclient.DepthOptions{Queues: cfg.queues, ExactCountThreshold: cfg.exactThreshold,
		Include: cfg.includeQueues, Exclude: cfg.excludeQueues}
	s := &queueSampler{
		cfg:         cfg,
		conn:        newSamplerConn(src, cfg.sampleTimeout, opts),
		key:         cfg.electionKey,
		sem:         make(chan struct{}, 1),
		attrCache:   map[string]*queueAttrs{},
		cardinality: cardinalityCheck{limit: cardinalityLimitOf(cfg)},
	}
	if !cfg.electionKeySet {
		s.key = electionKey(cfg.queues)
	}
	if cfg.election {
		store := election.NewPostgres(s.conn, election.WithStatementTimeout(s.conn.timeout))
		el, err := election.New(store, election.Config{
			Key:     s.key,
			TTL:     cfg.electionTTL,
			Healthy: cfg.exportHealth,
		})
		if err != nil {
			return nil, fmt.Errorf("otelmetrics: queue sampler election: %w", err)
		}
		s.elector = el
	}
	return s, nil
}

// electionKey derives the election key from the sampled queue set, so
// replicas sampling the same queues compete for the same lease.
func electionKey(queues []string) int64 {
	names := make([]string, len(queues))
	for i, q := range queues {
		names[i] = strings.ToLower(q)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	h := fnv.New64a()
	h.Write([]byte("pgmqotel/queue-sampler\x00" + strings.Join(names, ",")))
	return int64(h.Sum64())
}

func (s *queueSampler) register(meter metric.Meter) (metric.Registration, error) {
	depth, err1 := meter.Int64ObservableGauge(MetricQueueDepth,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the queue, by state: visible (readable now) or invisible (in flight or delayed)."))
	age, err2 := meter.Float64ObservableGauge(MetricQueueOldestAge,
		metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest message in the queue; 0 when the queue is empty."))
	sent, err3 := meter.Int64ObservableCounter(MetricQueueSent,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages ever sent to the queue."))
	fails, err4 := meter.Int64ObservableCounter(MetricSamplerErrors,
		metric.WithUnit("{error}"),
		metric.WithDescription("Queue samples, or single queues of a sample, that failed, by error type; their points were left out."))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("otelmetrics: create queue instruments: %w", err)
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		sample, _ := s.get(ctx)
		s.failures.observe(o, fails)
		// No sample (the collection was cancelled), a failed one, a
		// standby's or one from a term that has ended: report nothing
		// rather than a made-up or second value.
		if !s.reportable(sample) {
			return nil
		}
		observeQueues(o, queueInstruments{depth: depth, age: age, sent: sent}, sample)
		return nil
	}, depth, age, sent, fails)
}

// get returns a sample no older than the minimum interval, taking one if
// needed. Concurrent callers wait for the one in progress, but never past
// their own context. The attempt itself runs detached from ctx, under the
// sample timeout: a caller that stops waiting (a health check's short
// budget) never cancels a statement, which would make pgx close the
// sampler's connection.
func (s *queueSampler) get(ctx context.Context) (*queueSample, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.closed {
		<-s.sem
		return nil, errSamplerClosed
	}
	if last := s.last.Load(); last != nil && s.cfg.now().Sub(last.at) < s.cfg.minSampleInterval {
		<-s.sem
		return last, nil
	}
	done := make(chan *queueSample, 1)
	go func() {
		defer func() { <-s.sem }()
		sample := s.sample()
		s.samples.Add(1)
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

// reportable reports whether sample's queue figures may be exported now:
// it succeeded, as the sampler, in a term this replica still trusts (held,
// and its lease written healthy, so no other replica can be reporting).
func (s *queueSampler) reportable(sample *queueSample) bool {
	return s.current(sample) && (s.elector == nil || s.elector.Trusted(sample.term))
}

// current reports whether sample's queue figures are this replica's to
// show in process (Snapshot): it succeeded, as the sampler, in a term this
// replica still holds, healthy or not. A lone replica whose exports fail
// still shows its queues on /healthz.
func (s *queueSampler) current(sample *queueSample) bool {
	if sample == nil || sample.err != nil || sample.role != RoleSampler {
		return false
	}
	return s.elector == nil || s.elector.Holds(sample.term)
}

// sample makes one attempt under the sample timeout. A connection that
// was open before the attempt and turns out dead (the server's
// idle_session_timeout, a restart, a pooler's recycling) is replaced and
// the attempt made again at once, once. Called with sem held.
func (s *queueSampler) sample() *queueSample {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.sampleTimeout)
	defer cancel()
	reused := s.conn.live()
	sample := s.attempt(ctx)
	if sample.err != nil && reused && !s.conn.live() && ctx.Err() == nil {
		sample = s.attempt(ctx)
	}
	if sample.err != nil {
		s.failures.add(sample.op, sample.err)
	}
	return sample
}

// attempt connects if needed, takes part in the election and, as leader,
// samples. Called with sem held.
func (s *queueSampler) attempt(ctx context.Context) *queueSample {
	if err := s.conn.ensure(ctx); err != nil {
		return s.failed(opConnect, err)
	}
	var term election.Term
	if s.elector != nil {
		st, err := s.elector.Step(ctx)
		switch {
		case st.State == election.Leader:
			// A store error while the term is still held is not counted
			// here: the sample on the same connection fails and is counted
			// (one failure per collection), or the dead connection is
			// replaced and the attempt made again (sample).
			term = st.Term
		case st.Reason == election.ReasonReadOnly:
			// Not a failure: replicas on the primary elect the sampler.
			s.failures.reportOnce("read_only", fmt.Errorf("otelmetrics: queue sampler: this replica's database is read-only (a hot standby?), so it never samples; point WithSamplerConfig at the primary to make it eligible: %w", err))
			return &queueSample{at: s.cfg.now(), role: RoleReadOnly, reason: string(st.Reason)}
		case err != nil:
			if errors.Is(err, election.ErrNotInstalled) {
				err = fmt.Errorf("%w; run otelmetrics.ElectionDDL once as a role that may create it, and grant the sampler's role access (otelmetrics.ElectionGrantSQL)", err)
			}
			return s.failed(opElect, fmt.Errorf("otelmetrics: queue sampler: election: %w", err))
		default:
			s.failures.ok()
			return &queueSample{at: s.cfg.now(), role: RoleStandby, reason: string(st.Reason)}
		}
	}
	s.queries.Add(1)
	depths, err := s.conn.sample(ctx)
	if err != nil {
		return s.failed(opSample, fmt.Errorf("otelmetrics: queue sampler: %w", err))
	}
	s.failures.ok()
	if s.elector != nil && !s.elector.Holds(term) {
		// The term ended while the sample ran (this process was frozen,
		// or the database was slow past the trust window): its figures
		// may overlap another leader's.
		return &queueSample{at: s.cfg.now(), role: RoleStandby, reason: string(election.ReasonUntrusted)}
	}
	s.queueFailures(depths)
	return &queueSample{at: s.cfg.now(), role: RoleSampler, term: term, depths: depths, attrs: s.attrsFor(depths)}
}

// attrsFor returns the attribute sets of the sampled queues, reusing those
// of queues seen before and forgetting queues that are gone.
func (s *queueSampler) attrsFor(depths []pgmqclient.QueueDepth) []*queueAttrs {
	out := make([]*queueAttrs, len(depths))
	seen := make(map[string]*queueAttrs, len(depths))
	for i, d := range depths {
		a := s.attrCache[d.Queue]
		if a == nil {
			a = newQueueAttrs(d.Queue)
		}
		out[i], seen[d.Queue] = a, a
	}
	s.attrCache = seen
	return out
}

// failed is a failed attempt's sample; sample counts and reports it.
func (s *queueSampler) failed(op string, err error) *queueSample {
	return &queueSample{at: s.cfg.now(), role: RoleUnknown, op: op, err: err}
}

// errSamplerClosed is what a Snapshot taken after Close says of the
// sampler: it neither reconnects nor stands for election again.
var errSamplerClosed = errors.New("otelmetrics: queue sampler closed")

// close resigns the election, releasing the lease through the sampler's
// connection (reconnecting if it died, so the lease is freed even through
// a pooler), and ends the session.
func (s *queueSampler) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.sampleTimeout+time.Second)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("otelmetrics: close queue sampler: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.closed {
		return nil
	}
	s.closed = true
	s.last.Store(nil)
	var errs []error
	if s.elector != nil && s.elector.Status().State == election.Leader {
		rctx, rcancel := context.WithTimeout(ctx, s.cfg.sampleTimeout)
		if err := s.conn.ensure(rctx); err != nil {
			errs = append(errs, fmt.Errorf("otelmetrics: close queue sampler: release the election lease (it expires by itself): %w", err))
		} else if err := s.elector.Resign(rctx); err != nil {
			errs = append(errs, fmt.Errorf("otelmetrics: close queue sampler: %w", err))
		}
		rcancel()
	}
	errs = append(errs, s.conn.close(ctx))
	return errors.Join(errs...)
}
