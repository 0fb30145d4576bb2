package otelmetrics

import (
	"sort"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ProcessorKind counts the running processors of one kind (the queue or role
// they serve). Get it once with Metrics.Processor and keep it: Start and
// Finish are then two atomic additions with no allocation, so tracking costs
// about what a bare atomic counter does. The count is read by the
// orchestration.processor.active callback at collection time.
type ProcessorKind struct {
	active atomic.Int64
	// Keep counters of different kinds on different cache lines.
	_     [56]byte
	name  string
	attrs metric.MeasurementOption // built once, reused at every collection
}

// Name returns the kind, the value of orchestration.processor.kind.
func (k *ProcessorKind) Name() string { return k.name }

// Active returns the number of processors of this kind running now.
func (k *ProcessorKind) Active() int64 { return k.active.Load() }

// Start records that a processor of this kind started. Call Finish on the
// returned run when it ends, typically with defer so that a panic still
// decrements:
//
//	run := kind.Start()
//	defer run.Finish()
func (k *ProcessorKind) Start() ProcessorRun {
	k.active.Add(1)
	return ProcessorRun{kind: k}
}

// ProcessorRun is one started processor. Its zero value is a finished run.
type ProcessorRun struct {
	kind *ProcessorKind
}

// Finish records that the processor ended. Calling it again does nothing, so
// the count never goes below the number of runs started. A run belongs to
// the goroutine that started it; for a finish callable from anywhere, use
// Metrics.ProcessorStarted.
func (r *ProcessorRun) Finish() {
	if k := r.kind; k != nil {
		r.kind = nil
		k.active.Add(-1)
	}
}

// processorRegistry holds the kinds seen so far. Lookups of a known kind
// take no lock; the list read at collection is copy-on-write.
type processorRegistry struct {
	byName sync.Map // string -> *ProcessorKind
	mu     sync.Mutex
	kinds  atomic.Pointer[[]*ProcessorKind]
}

func (r *processorRegistry) get(name string) *ProcessorKind {
	if k, ok := r.byName.Load(name); ok {
		return k.(*ProcessorKind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.byName.Load(name); ok {
		return k.(*ProcessorKind)
	}
	k := &ProcessorKind{
		name:  name,
		attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrProcessorKind, name))),
	}
	var next []*ProcessorKind
	if old := r.kinds.Load(); old != nil {
		next = append(next, *old...)
	}
	next = append(next, k)
	sort.Slice(next, func(i, j int) bool { return next[i].name < next[j].name })
	r.kinds.Store(&next)
	r.byName.Store(name, k)
	return k
}

func (r *processorRegistry) list() []*ProcessorKind {
	if l := r.kinds.Load(); l != nil {
		return *l
	}
	return nil
}

// Processor returns the counter of one processor kind, creating it on first
// use. Keep the result on hot paths.
func (m *Metrics) Processor(kind string) *ProcessorKind {
	return m.processors.get(kind)
}

// ProcessorStarted records that a processor of the given kind started and
// returns the function that records its end:
//
//	done := m.ProcessorStarted("payments")
//	defer done()
//
// done is idempotent and safe to call from any goroutine. This form costs a
// lookup and a small allocation per call; hot loops should keep the
// *ProcessorKind from Processor and use Start/Finish.
func (m *Metrics) ProcessorStarted(kind string) (done func()) {
	k := m.processors.get(kind)
	k.active.Add(1)
	var finished atomic.Bool
	return func() {
		if finished.CompareAndSwap(false, true) {
			k.active.Add(-1)
		}
	}
}

// ActiveProcessors returns the number of processors running now, all kinds
// together, for health checks and load-balancing decisions.
func (m *Metrics) ActiveProcessors() int64 {
	var n int64
	for _, k := range m.processors.list() {
		n += k.Active()
	}
	return n
}

// ActiveProcessorsByKind returns the number of processors running now per
// kind. Kinds seen before and now idle report 0.
func (m *Metrics) ActiveProcessorsByKind() map[string]int64 {
	kinds := m.processors.list()
	out := make(map[string]int64, len(kinds))
	for _, k := range kinds {
		out[k.name] = k.Active()
	}
	return out
}
