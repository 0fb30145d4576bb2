package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// SamplerRole says whether this instance reports the queue metrics.
type SamplerRole string

// Sampler roles.
const (
	// RoleSampler: this instance samples the queues (it holds the election
	// lock, or election is off).
	RoleSampler SamplerRole = "sampler"
	// RoleStandby: another instance holds the election lock; this one
	// reports no queue metrics and tries to take over at each collection.
	RoleStandby SamplerRole = "standby"
	// RoleUnknown: no sample has completed yet, or the last one failed
	// before the election could be decided.
	RoleUnknown SamplerRole = "unknown"
)

// queueSample is the immutable result of one sampling attempt.
type queueSample struct {
	at     time.Time // local clock when the attempt ended
	role   SamplerRole
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
	cfg        config
	connConfig *pgx.ConnConfig
	opts       pgmqclient.DepthOptions
	depths     *pgmqclient.DepthSampler // on conn; replaced with it
	key        int64

	sem     chan struct{}
	last    atomic.Pointer[queueSample]
	samples atomic.Int64 // attempts made, for tests and benchmarks
	queries atomic.Int64 // queue-depth statements sent

	// Guarded by sem.
	conn       *pgx.Conn
	leader     bool
	attrCache  map[string]*queueAttrs
	lastReport string

	failMu   sync.Mutex
	failures map[string]*failureCount

	queueReports queueReports // per-queue errors handed to otel.Handle; guarded by sem
	cardinality  cardinalityCheck
}

type failureCount struct {
	n     atomic.Int64
	attrs metric.MeasurementOption
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
	cc := cfg.queuePool.Config().ConnConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = "pgmqotel-queue-sampler"
	// Let the server give up a little before our own deadline, so a locked
	// or slow table ends the statement but keeps the session (and the
	// election lock) alive.
	serverTimeout := strconv.FormatInt(max(cfg.sampleTimeout.Milliseconds()*9/10, 1), 10)
	cc.RuntimeParams["statement_timeout"] = serverTimeout
	cc.RuntimeParams["lock_timeout"] = serverTimeout
	// A holder cut off by the network keeps its session, and so the
	// election lock, until the server notices the connection is dead: with
	// these keepalives that takes about 25 s instead of the system's
	// default of hours, and another replica takes over.
	cc.RuntimeParams["tcp_keepalives_idle"] = "10"
	cc.RuntimeParams["tcp_keepalives_interval"] = "5"
	cc.RuntimeParams["tcp_keepalives_count"] = "3"
	// The sampling statement stays prepared on this connection; one generic
	// plan spares the server from planning it again at every sample.
	cc.RuntimeParams["plan_cache_mode"] = "force_generic_plan"

	s := &queueSampler{
		cfg:        cfg,
		connConfig: cc,
		opts: pgmqclient.DepthOptions{Queues: cfg.queues, ExactCountThreshold: cfg.exactThreshold,
			Include: cfg.includeQueues, Exclude: cfg.excludeQueues},
		key:         cfg.electionKey,
		sem:         make(chan struct{}, 1),
		attrCache:   map[string]*queueAttrs{},
		failures:    map[string]*failureCount{},
		cardinality: cardinalityCheck{limit: cardinalityLimitOf(cfg)},
	}
	if !cfg.electionKeySet {
		s.key = electionKey(cfg.queues)
	}
	return s, nil
}

// electionKey derives the advisory lock key from the sampled queue set, so
// replicas sampling the same queues compete for the same lock.
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
		metric.WithDescription("Queue samples that failed, by error type; their points were left out."))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("otelmetrics: create queue instruments: %w", err)
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		sample, _ := s.get(ctx)
		s.failMu.Lock()
		for _, f := range s.failures {
			o.ObserveInt64(fails, f.n.Load(), f.attrs)
		}
		s.failMu.Unlock()
		// No sample (the collection was cancelled), a failed one or a
		// standby's: report nothing rather than a made-up value.
		if sample == nil || sample.err != nil || sample.role != RoleSampler {
			return nil
		}
		observeQueues(o, queueInstruments{depth: depth, age: age, sent: sent}, sample)
		return nil
	}, depth, age, sent, fails)
}

// get returns a sample no older than the minimum interval, taking one if
// needed. Concurrent callers wait for the one in progress, but never past
// their own context.
func (s *queueSampler) get(ctx context.Context) (*queueSample, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if last := s.last.Load(); last != nil && s.cfg.now().Sub(last.at) < s.cfg.minSampleInterval {
		return last, nil
	}
	sample := s.sample(ctx)
	s.samples.Add(1)
	s.last.Store(sample)
	return sample, nil
}

// sample makes one attempt. Called with sem held.
func (s *queueSampler) sample(parent context.Context) *queueSample {
	ctx, cancel := context.WithTimeout(parent, s.cfg.sampleTimeout)
	defer cancel()

	if s.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, s.connConfig)
		if err != nil {
			return s.fail(fmt.Errorf("otelmetrics: queue sampler: connect: %w", err))
		}
		ds, err := pgmqclient.NewDepthSampler(conn, s.opts)
		if err != nil { // options were validated in newQueueSampler
			_ = conn.Close(ctx)
			return s.fail(fmt.Errorf("otelmetrics: queue sampler: %w", err))
		}
		s.conn, s.depths, s.leader = conn, ds, false
	}
	role := RoleSampler
	if s.cfg.election && !s.leader {
		var won bool
		if err := s.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", s.key).Scan(&won); err != nil {
			return s.fail(fmt.Errorf("otelmetrics: queue sampler: election: %w", err))
		}
		s.leader = won
		if !won {
			role = RoleStandby
		}
	}
	if role == RoleStandby {
		s.lastReport = ""
		return &queueSample{at: s.cfg.now(), role: RoleStandby}
	}
	s.queries.Add(1)
	depths, err := s.depths.Sample(ctx)
	if err != nil {
		return s.fail(fmt.Errorf("otelmetrics: queue sampler: %w", err))
	}
	s.lastReport = ""
	s.queueFailures(depths)
	return &queueSample{at: s.cfg.now(), role: RoleSampler, depths: depths, attrs: s.attrsFor(depths)}
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

// fail records a failed attempt: it drops a broken connection (and with it
// the election lock), counts the failure by type, and hands the error to
// otel.Handle once per distinct failure rather than at every collection.
func (s *queueSampler) fail(err error) *queueSample {
	if s.conn != nil && s.conn.IsClosed() {
		s.conn, s.leader = nil, false
	}
	typ := errorType(err)
	s.failMu.Lock()
	f := s.failures[typ]
	if f == nil {
		f = &failureCount{attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrErrorType, typ)))}
		s.failures[typ] = f
	}
	s.failMu.Unlock()
	f.n.Add(1)
	if msg := err.Error(); msg != s.lastReport {
		s.lastReport = msg
		otel.Handle(err)
	}
	return &queueSample{at: s.cfg.now(), role: RoleUnknown, err: err}
}

// errorType classifies a sampling error into a value of error.type with a
// small, fixed set of values.
func errorType(err error) string {
	var pgErr *pgconn.PgError
	var netErr net.Error
	var connErr *pgconn.ConnectError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "57014", "55P03": // query_canceled (statement_timeout), lock_not_available
			return "timeout"
		}
		return pgErr.Code
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.SafeToRetry(err),
		// The server or the network dropped an open connection mid-query.
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection"
	}
	return "_OTHER"
}

// close ends the sampler's session, releasing the election lock.
func (s *queueSampler) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.sampleTimeout+time.Second)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("otelmetrics: close queue sampler: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close(ctx)
	s.conn, s.leader = nil, false
	return err
}
