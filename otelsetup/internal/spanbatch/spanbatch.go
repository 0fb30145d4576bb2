package spanbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Defaults, the SDK's (and the specification's) for the batch span
// processor.
const (
	DefaultScheduleDelay      = 5 * time.Second
	DefaultExportTimeout      = 30 * time.Second
	DefaultMaxQueueSize       = 2048
	DefaultMaxExportBatchSize = 512
)

// Config holds the processor's settings; a zero field takes its default.
type Config struct {
	// ScheduleDelay is the longest a span waits in the queue before it is
	// exported.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export.
	ExportTimeout time.Duration
	// MaxQueueSize is how many spans wait at most; more are dropped.
	MaxQueueSize int
	// MaxExportBatchSize is how many spans one export carries at most; a
	// queue that reaches it is exported at once. It is cut to
	// MaxQueueSize.
	MaxExportBatchSize int
	// HandleError receives the error of each failed export; nil means
	// otel.Handle. ForceFlush and Shutdown also return theirs.
	HandleError func(error)
}

func (c Config) withDefaults() Config {
	if c.ScheduleDelay <= 0 {
		c.ScheduleDelay = DefaultScheduleDelay
	}
	if c.ExportTimeout <= 0 {
		c.ExportTimeout = DefaultExportTimeout
	}
	if c.MaxQueueSize <= 0 {
		c.MaxQueueSize = DefaultMaxQueueSize
	}
	if c.MaxExportBatchSize <= 0 {
		c.MaxExportBatchSize = DefaultMaxExportBatchSize
	}
	c.MaxExportBatchSize = min(c.MaxExportBatchSize, c.MaxQueueSize)
	if c.HandleError == nil {
		c.HandleError = otel.Handle
	}
	return c
}

// Processor is the batching span processor. Build it with New.
type Processor struct {
	exp sdktrace.SpanExporter
	cfg Config

	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan
	dropped int // since the last report
	stopped bool

	full chan struct{} // a batch is ready (capacity 1: wakes coalesce)
	stop chan struct{} // closed by Shutdown
	done chan struct{} // closed when the goroutine has returned

	runCtx    context.Context // the goroutine's exports; cancelled by Shutdown
	cancelRun context.CancelFunc

	exporting    chan struct{} // one export at a time, in queue order (capacity 1)
	shutdownOnce sync.Once
	shutdownDone chan struct{} // closed when Shutdown's work has finished
	shutdownErr  error         // valid once shutdownDone is closed
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

// New returns a processor exporting to exp and starts its goroutine;
// Shutdown stops it.
func New(exp sdktrace.SpanExporter, cfg Config) *Processor {
	cfg = cfg.withDefaults()
	p := &Processor{
		exp:          exp,
		cfg:          cfg,
		queue:        make([]sdktrace.ReadOnlySpan, 0, cfg.MaxExportBatchSize),
		full:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		exporting:    make(chan struct{}, 1),
		shutdownDone: make(chan struct{}),
	}
	p.runCtx, p.cancelRun = context.WithCancel(context.Background())
	go p.run()
	return p
}

// OnStart does nothing.
func (*Processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s if it is sampled, without waking the export goroutine
// unless s completes a batch. A full queue drops s.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	if len(p.queue) >= p.cfg.MaxQueueSize {
		p.dropped++
		p.mu.Unlock()
		return
	}
	p.queue = append(p.queue, s)
	ready := len(p.queue) == p.cfg.MaxExportBatchSize
	p.mu.Unlock()
	if ready {
		select {
		case p.full <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// run exports the queue when a batch is full or the schedule delay has
// passed, until Shutdown.
func (p *Processor) run() {
	defer close(p.done)
	timer := time.NewTimer(p.cfg.ScheduleDelay)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.full:
			// Only full batches: the rest waits for the delay.
			_ = p.export(p.runCtx, true, false)
		case <-timer.C:
			_ = p.export(p.runCtx, false, false)
			timer.Reset(p.cfg.ScheduleDelay)
		}
	}
}

// take removes up to one batch from the head of the queue, or nothing
// when fullOnly and less than a batch waits. It also returns and resets
// the drop count.
func (p *Processor) take(fullOnly bool) ([]sdktrace.ReadOnlySpan, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dropped := p.dropped
	p.dropped = 0
	n := min(len(p.queue), p.cfg.MaxExportBatchSize)
	if n == 0 || fullOnly && n < p.cfg.MaxExportBatchSize {
		return nil, dropped
	}
	batch := make([]sdktrace.ReadOnlySpan, n)
	copy(batch, p.queue)
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:]) // no references to exported spans
	p.queue = p.queue[:rest]
	return batch, dropped
}

// export sends the queue to the exporter, a batch per call, until it is
// empty (or holds less than a batch, when fullOnly) or ctx ends. When ctx
// ends first, final (Shutdown) drops what is left and says so; otherwise
// it stays queued for the next export. Export errors go to HandleError;
// the first is returned.
func (p *Processor) export(ctx context.Context, fullOnly, final bool) error {
	select {
	case p.exporting <- struct{}{}:
	case <-ctx.Done():
		// Another export holds the exporter past this caller's deadline.
		if n := p.drainIf(final); n > 0 {
			otel.Handle(&DropError{Dropped: n, Reason: "shutdown ended: " + ctx.Err().Error()})
		}
		return ctx.Err()
	}
	defer func() { <-p.exporting }()
	var first error
	for {
		if err := ctx.Err(); err != nil {
			if n := p.drainIf(final); n > 0 {
				otel.Handle(&DropError{Dropped: n, Reason: "shutdown ended: " + err.Error()})
			}
			return errors.Join(first, err)
		}
		batch, dropped := p.take(fullOnly)
		if dropped > 0 {
			otel.Handle(&DropError{Dropped: dropped, Reason: fmt.Sprintf("queue full (%d spans, OTEL_BSP_MAX_QUEUE_SIZE)", p.cfg.MaxQueueSize)})
		}
		if len(batch) == 0 {
			return first
		}
		ectx, cancel := context.WithTimeout(ctx, p.cfg.ExportTimeout)
		err := p.exp.ExportSpans(ectx, batch)
		cancel()
		if err != nil {
			p.cfg.HandleError(err)
			if first == nil {
				first = err
			}
		}
	}
}

// drainIf empties the queue, if do, and returns how many spans it held.
func (p *Processor) drainIf(do bool) int {
	if !do {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.queue)
	clear(p.queue)
	p.queue = p.queue[:0]
	return n
}

// ForceFlush exports every span queued so far, within ctx.
func (p *Processor) ForceFlush(ctx context.Context) error {
	return p.export(ctx, false, false)
}

// Shutdown stops the goroutine (cancelling an export in progress),
// exports what is queued and shuts the exporter down. It returns when that
// is done or ctx ends, whichever comes first; the exporter is shut down
// either way, the queued spans then exported within ctx or dropped and
// reported. Spans that end afterwards are dropped. Only the first call
// does the work; later ones wait for it within their own ctx.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		close(p.stop)
		p.cancelRun()
		go func() {
			defer close(p.shutdownDone)
			<-p.done
			err := p.export(ctx, false, true)
			p.shutdownErr = errors.Join(err, p.exp.Shutdown(ctx))
		}()
	})
	select {
	case <-p.shutdownDone:
		return p.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DropError reports spans dropped: the queue was full (the exporter too
// slow or unreachable for the rate of spans), or a flush or shutdown ran
// out of time.
type DropError struct {
	Dropped int
	Reason  string
}

// Error implements error.
func (e *DropError) Error() string {
	return fmt.Sprintf("spanbatch: dropped %d spans: %s", e.Dropped, e.Reason)
}

// String describes the processor by its settings. Loggers that print
// values by reflection (the SDK logs its TracerProvider's processors) use
// it instead of reading the processor's fields while its goroutine
// changes them.
func (p *Processor) String() string {
	return fmt.Sprintf("spanbatch.Processor{ScheduleDelay: %v, ExportTimeout: %v, MaxQueueSize: %d, MaxExportBatchSize: %d}",
		p.cfg.ScheduleDelay, p.cfg.ExportTimeout, p.cfg.MaxQueueSize, p.cfg.MaxExportBatchSize)
}

// Queued returns how many spans wait for export.
func (p *Processor) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}
