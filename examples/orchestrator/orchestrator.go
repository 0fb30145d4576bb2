package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Timings that are not worth a flag.
const (
	// pollInterval is how long an idle processor waits before it looks for
	// a message again when no insert notification can wake it (wake.go).
	// It waits in Go, without holding a connection.
	pollInterval = 250 * time.Millisecond
	// retryInterval is how long a processor, the producer or the queue
	// setup waits after a database error before trying again.
	retryInterval = time.Second
	// shutdownTimeout bounds each shutdown step after the processors have
	// ended: closing the health endpoint, the last export.
	shutdownTimeout = 5 * time.Second
)

// orchestrator is the running program: producer, processors, health
// endpoint and summary share it.
type orchestrator struct {
	cfg     Config
	log     *slog.Logger
	errs    *quietErrors
	pool    *pgxpool.Pool
	client  *pgmqclient.Client // on pool
	tracer  *otelpgmq.Tracer   // spans and messaging metrics of every client
	metrics *otelmetrics.Metrics
	kind    *otelmetrics.ProcessorKind // processors of cfg.Queue
	wake    *wakeup                    // wakes idle processors (wake.go)
	pooled  bool                       // a pooler answers for the server: no LISTEN
	install atomic.Pointer[string]     // how PGMQ is installed, once read (install.go)

	produced  atomic.Int64 // messages sent
	processed atomic.Int64 // messages worked on and archived
	failed    atomic.Int64 // messages whose work failed, left to reappear
}

// run runs the orchestrator until ctx is done or cfg.Duration has passed,
// then shuts it down and returns nil. It serves /healthz on health, which it
// closes, and logs to out. Only a failure to start is an error: an
// unreachable database is retried and reported on /healthz. providerOpts
// are passed to otelsetup.NewMeterProvider (tests add a reader).
func run(ctx context.Context, cfg Config, health net.Listener, out io.Writer, providerOpts ...otelsetup.MeterProviderOption) (err error) {
	defer func() {
		if err != nil {
			_ = health.Close()
		}
	}()
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	// Export and sampling failures reach otel.Handle; log them with the
	// rest. (Each distinct failure is reported once.)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("telemetry", "err", err) }))

	// Wiring, as in the README's "Your first program". Nothing here
	// connects: the pool, the exporter and the queue sampler all connect
	// lazily, so the orchestrator starts (and serves /healthz) while the
	// database or the collector is still down.
	tel, err := newTelemetry(ctx, cfg, providerOpts...)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tel.abandon() // a failed start; after a run, a second Shutdown does nothing
		}
	}()
	mp, tp, prop := tel.mp, tel.tp, tel.prop
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	// The process span is the child of the message's send span, so that
	// Jaeger shows producer and processor as one trace; the library's
	// default is a link.
	tracer := otelpgmq.NewTracer(otelpgmq.WithTracerProvider(tp), otelpgmq.WithMeterProvider(mp),
		otelpgmq.WithPropagator(prop), otelpgmq.WithProcessParent())
	pc, err := poolConfig(cfg)
	if err != nil {
		return err
	}
	pooled := adaptToPooler(ctx, pc, log)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connection pool: %w", err)
	}
	defer pool.Close()
	opts := append(mp.MetricsOptions(), otelmetrics.WithPool("", pool), otelmetrics.WithQueueSampling(pool))
	m, err := otelmetrics.New(append(opts, cfg.hooks.metrics()...)...)
	if err != nil {
		return err
	}

	o := &orchestrator{
		cfg:     cfg,
		log:     log,
		errs:    newQuietErrors(log),
		pool:    pool,
		client:  pgmqclient.New(pool, pgmqclient.WithTracer(tracer)),
		tracer:  tracer,
		metrics: m,
		kind:    m.Processor(cfg.Queue), // kept: Start and Finish are then two atomic adds
		wake:    newWakeup(),
		pooled:  pooled,
	}

	srv := &http.Server{Handler: o.healthMux(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(health) }()
	log.Info("started", "health", "http://"+health.Addr().String()+healthPath,
		"queue", cfg.Queue, "processors", cfg.Processors, "rate", cfg.Rate, "work", cfg.Work,
		"fail_rate", cfg.FailRate, "vt", cfg.VT, "pool_max_conns", pc.MaxConns)

	// Processors stop taking messages when ctx ends; work already started
	// runs on under work until it ends or the grace period is over.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var workers sync.WaitGroup
	workers.Go(func() { o.summarize(ctx) })
	workers.Go(func() {
		// Producer and processors need the queue. This goroutine is
		// counted in workers, so adding to it here is safe.
		if o.ensureQueue(ctx) != nil {
			return
		}
		o.pgmqInstall(ctx, "") // read now, so the first summary line has it
		workers.Go(func() { o.produce(ctx) })
		workers.Go(func() { o.watch(ctx) })
		for range cfg.Processors {
			workers.Go(func() { o.process(ctx, work) })
		}
	})

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-served: // the listener failed: stop everything
		serveErr = fmt.Errorf("health endpoint: %w", err)
		log.Error("health endpoint failed", "err", err)
		cancel()
	}
	log.Info("stopping", "in_flight", o.kind.Active(), "grace", cfg.Grace)
	stopped := make(chan struct{})
	go func() { workers.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(cfg.Grace):
		log.Warn("grace period over: abandoning work in progress; its messages reappear after the visibility timeout",
			"in_flight", o.kind.Active())
		cancelWork()
		<-stopped
	}
	o.logSummary(context.Background(), "stopped")

	// Health first, while the metrics still work; then the last export,
	// which still observes the instruments (so the collector sees the
	// processors back at 0); then the instruments themselves.
	o.shutdownStep("health endpoint", func(ctx context.Context) error {
		if err := srv.Shutdown(ctx); err != nil || serveErr != nil {
			return err // Serve has already returned if serveErr is set
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	o.shutdownStep("tracer provider", tp.Shutdown)
	o.shutdownStep("meter provider", mp.Shutdown)
	o.shutdownStep("metrics", func(context.Context) error { return m.Close() })
	return serveErr
}

// shutdownStep runs one bounded shutdown step and logs its failure. A
// failed step does not fail the shutdown: the rest still has to run.
func (o *orchestrator) shutdownStep(what string, step func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := step(ctx); err != nil {
		o.log.Warn("shutdown", "step", what, "err", err)
	}
}

// metrics returns the hooks' otelmetrics options; h may be nil.
func (h *testHooks) metrics() []otelmetrics.Option {
	if h == nil {
		return nil
	}
	return h.metricsOptions
}

// poolConfig parses DATABASE_URL and sizes the pool. Processors keep their
// connection while they work, so by default the pool has room for every
// processor, the producer and one more; a pool_max_conns in DATABASE_URL or
// -max-conns overrides that (a smaller pool makes saturation visible in
// pgxpool.acquire.waits and db.client.connection.wait_time, which the
// PoolTracer set here feeds).
func poolConfig(cfg Config) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, &ConfigError{Name: "DATABASE_URL", Value: "(hidden)", Reason: err.Error()}
	}
	switch {
	case cfg.MaxConns > 0:
		pc.MaxConns = cfg.MaxConns
	case !strings.Contains(pc.ConnString(), "pool_max_conns"):
		pc.MaxConns = int32(cfg.Processors) + 2
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "pgmqotel-orchestrator"
	pc.ConnConfig.Tracer = otelmetrics.NewPoolTracer() // times each acquire; WithPool finds it
	return pc, nil
}

// ensureQueue creates the queue (a no-op when it exists), retrying until
// the database answers or ctx ends.
func (o *orchestrator) ensureQueue(ctx context.Context) error {
	for {
		err := o.client.CreateQueue(ctx, o.cfg.Queue)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o.errs.report("setup", err)
		if !wait(ctx, retryInterval) {
			return ctx.Err()
		}
	}
}

// produce sends task requests at cfg.Rate until ctx ends. A slow send
// delays the next ones (the ticker drops ticks), so the rate is a ceiling.
func (o *orchestrator) produce(ctx context.Context) {
	if o.cfg.Rate == 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.cfg.Rate))
	defer tick.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		payload := fmt.Appendf(nil, `{"task_id":%d,"requested_at":%q}`, n, time.Now().UTC().Format(time.RFC3339Nano))
		if _, err := o.client.Send(ctx, o.cfg.Queue, payload); err != nil {
			if ctx.Err() != nil {
				return
			}
			o.errs.report("producer", err)
			continue
		}
		o.produced.Add(1)
	}
}

// process is one processor: it takes one message at a time until stop
// ends. work bounds the message in hand, which is finished after stop.
func (o *orchestrator) process(stop, work context.Context) {
	for stop.Err() == nil {
		handled, err := o.processOne(stop, work)
		switch {
		case stop.Err() != nil:
			return
		case err != nil:
			o.errs.report("processor", err)
			wait(stop, retryInterval)
		case !handled:
			o.wake.idleWait(stop) // the queue is empty
		}
	}
}

// processOne reads one message and works on it. It reports whether there
// was one. The connection is kept during the work, as a processor that
// writes its results in the same session would, so pool utilization
// follows the number of busy processors.
func (o *orchestrator) processOne(stop, work context.Context) (handled bool, err error) {
	conn, err := o.pool.Acquire(stop)
	if err != nil {
		return false, fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()
	c := pgmqclient.New(conn, pgmqclient.WithTracer(o.tracer))
	// Read under work, not stop: a read cut short by a stop could take a
	// message on the server without the processor ever seeing it.
	msgs, err := c.Read(work, o.cfg.Queue, o.cfg.VT, 1)
	if err != nil || len(msgs) == 0 {
		return false, err
	}
	// One call counts the processor (active from here until the message
	// is done), traces the work and measures it.
	err = o.tracer.Process(work, o.cfg.Queue, o.kind, msgs[0], func(ctx context.Context) error {
		return o.work(ctx, c, msgs[0])
	})
	switch {
	case errors.Is(err, errTaskFailed), errors.Is(err, errAbandoned):
		return true, nil
	case err != nil:
		return true, err // retried after the visibility timeout
	}
	return true, nil
}

// Outcomes of work that are not the processor's errors; Process records
// them on the span and, by their ErrorType, as error.type of
// messaging.process.duration.
var (
	errTaskFailed error = outcome("task_failed")
	errAbandoned  error = outcome("abandoned")
)

// outcome is an error whose text is also its error.type.
type outcome string

func (o outcome) Error() string     { return strings.ReplaceAll(string(o), "_", " ") }
func (o outcome) ErrorType() string { return string(o) }

// work works on one message and archives it on success.
func (o *orchestrator) work(ctx context.Context, c *pgmqclient.Client, msg pgmqclient.Message) error {
	select {
	case <-ctx.Done():
		// Abandoned at shutdown: the message reappears after its
		// visibility timeout.
		return errAbandoned
	case <-time.After(o.cfg.Work):
	}
	if rand.Float64() < o.cfg.FailRate {
		// Not deleted: it becomes visible again after its visibility
		// timeout and is retried, with read_ct one higher.
		o.failed.Add(1)
		return errTaskFailed
	}
	ok, err := c.Archive(ctx, o.cfg.Queue, msg.ID)
	if err != nil {
		return err
	}
	if !ok {
		// Another processor archived it after its timeout ran out.
		o.log.Warn("message was already gone", "queue", o.cfg.Queue, "msg_id", msg.ID, "read_ct", msg.ReadCount)
		return nil
	}
	o.processed.Add(1)
	return nil
}

// summarize logs a summary line every cfg.Summary until ctx ends.
func (o *orchestrator) summarize(ctx context.Context) {
	if o.cfg.Summary == 0 {
		return
	}
	tick := time.NewTicker(o.cfg.Summary)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			o.logSummary(ctx, "summary")
		}
	}
}

// logSummary logs one line: processors, pool, queue, counts, database and
// how PGMQ is installed there (pgmq="compat schema (not PGMQ)" on the
// project's test schema, so that a demo on it is never taken for one on
// PGMQ).
func (o *orchestrator) logSummary(ctx context.Context, msg string) {
	r := o.health(ctx)
	attrs := []any{
		"active", fmt.Sprintf("%d/%d", r.ActiveProcessors, o.cfg.Processors),
	}
	for name, p := range r.Pools {
		attrs = append(attrs, "pool", name, "pool_utilization", fmt.Sprintf("%.2f", p.Utilization),
			"pool_used", p.Used, "pool_max", p.Max)
	}
	attrs = append(attrs, queueSummary(r.Snapshot, o.cfg.Queue)...)
	db := "ok"
	switch {
	case !r.Database.Reachable:
		db = "down"
	case !r.Database.Healthy:
		db = "error" // it answers with an error: PGMQ missing, permissions, ...
	}
	attrs = append(attrs, "produced", r.Tasks.Produced, "processed", r.Tasks.Processed, "failed", r.Tasks.Failed,
		"database", db, "pgmq", o.pgmqInstall(ctx, r.Database.PGMQ))
	o.log.Info(msg, attrs...)
}

// queueSummary is the summary's queue fields: "unknown" for any figure
// the sampler could not know (never 0 in its place), with the reason.
func queueSummary(s otelmetrics.Snapshot, queue string) []any {
	unknown := func(p *int64) any {
		if p == nil {
			return "unknown"
		}
		return *p
	}
	var q otelmetrics.QueueSnapshot
	found := false
	for _, db := range s.Databases {
		if q, found = db.Queues[queue]; found {
			break
		}
	}
	out := []any{"depth", unknown(q.Depth), "visible", unknown(q.Visible), "invisible", unknown(q.Invisible)}
	if q.OldestAgeSeconds != nil {
		out = append(out, "oldest_age", time.Duration(*q.OldestAgeSeconds*float64(time.Second)).Round(time.Millisecond))
	}
	if q.Error != "" {
		out = append(out, "depth_error", q.Error)
	}
	return out
}

// wait waits for d or until ctx ends, and reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// quietErrors logs errors without flooding: the same error from the same
// source is logged once per quietPeriod, with the number of repeats, so a
// database outage costs a few lines rather than one per retry.
type quietErrors struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]*quietEntry // by source
}

type quietEntry struct {
	msg     string
	at      time.Time
	repeats int
}

const quietPeriod = 10 * time.Second

func newQuietErrors(log *slog.Logger) *quietErrors {
	return &quietErrors{log: log, seen: map[string]*quietEntry{}}
}

func (q *quietErrors) report(source string, err error) {
	msg := err.Error()
	now := time.Now()
	q.mu.Lock()
	e := q.seen[source]
	if e != nil && e.msg == msg && now.Sub(e.at) < quietPeriod {
		e.repeats++
		q.mu.Unlock()
		return
	}
	repeats := 0
	if e != nil && e.msg == msg {
		repeats = e.repeats
	}
	q.seen[source] = &quietEntry{msg: msg, at: now}
	q.mu.Unlock()
	q.log.Error(source, "err", err, "repeats_since_last_logged", repeats)
}
