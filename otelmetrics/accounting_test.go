package otelmetrics

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A model-based test of processor accounting. Goroutines run random
// sequences of every way of starting and finishing a processor, each
// keeping the truth (how many of each kind it left running). At barriers,
// with every goroutine paused, the counts read in-process and through a
// collection must equal the sum of the truths; between barriers a
// concurrent reader checks that no count ever goes negative. At the end
// every run is finished and every count is 0.

const (
	accountingWorkers = 8
	accountingPhases  = 50
	accountingOps     = 100_000 // in total, across workers and phases
)

var accountingKinds = []string{"email", "sms", "payments", "etl", "webhooks"}

// accountingWorker is one goroutine's share of the model.
type accountingWorker struct {
	m     *Metrics
	rng   *rand.Rand
	kinds []*ProcessorKind // kept, as hot paths do

	runs     []accountingRun // started, not finished
	finished []accountingRun // finished, kept to finish again
	live     map[string]int64
}

// accountingRun is one started processor in one of the two forms.
type accountingRun struct {
	kind string
	run  *ProcessorRun // Processor(kind).Start form
	done func()        // ProcessorStarted form
}

func (r accountingRun) finish() {
	if r.run != nil {
		r.run.Finish()
	} else {
		r.done()
	}
}

func (w *accountingWorker) start(handoff chan<- accountingRun) {
	i := w.rng.IntN(len(accountingKinds))
	name := accountingKinds[i]
	var r accountingRun
	switch w.rng.IntN(3) {
	case 0:
		run := w.kinds[i].Start()
		r = accountingRun{kind: name, run: &run}
	case 1:
		run := w.m.Processor(name).Start() // looked up each time
		r = accountingRun{kind: name, run: &run}
	default:
		r = accountingRun{kind: name, done: w.m.ProcessorStarted(name)}
	}
	w.live[name]++
	// Some done funcs end on another goroutine, as a callback would. The
	// truth moves with them: this worker counts the start, the finisher
	// the finish.
	if r.done != nil && w.rng.IntN(4) == 0 {
		select {
		case handoff <- r:
			return
		default:
		}
	}
	w.runs = append(w.runs, r)
}

func (w *accountingWorker) finishOne() {
	if len(w.runs) == 0 {
		return
	}
	i := w.rng.IntN(len(w.runs))
	r := w.runs[i]
	w.runs[i] = w.runs[len(w.runs)-1]
	w.runs = w.runs[:len(w.runs)-1]
	r.finish()
	w.live[r.kind]--
	if len(w.finished) < 64 {
		w.finished = append(w.finished, r)
	} else {
		w.finished[w.rng.IntN(len(w.finished))] = r
	}
}

// op runs one random operation.
func (w *accountingWorker) op(handoff chan accountingRun) {
	switch n := w.rng.IntN(100); {
	case n < 40:
		w.start(handoff)
	case n < 75:
		w.finishOne()
	case n < 82: // finishing again changes nothing
		if len(w.finished) > 0 {
			w.finished[w.rng.IntN(len(w.finished))].finish()
		}
	case n < 88: // a processor that panics, finished by its deferred call
		w.panicking()
	case n < 92: // the zero run is a finished run
		var r ProcessorRun
		r.Finish()
	default: // finish a done func handed over by another worker
		select {
		case r := <-handoff:
			r.finish()
			w.live[r.kind]--
		default:
		}
	}
}

func (w *accountingWorker) panicking() {
	i := w.rng.IntN(len(accountingKinds))
	useDone := w.rng.IntN(2) == 0
	defer func() {
		if recover() == nil {
			panic("the processor did not panic")
		}
	}()
	if useDone {
		done := w.m.ProcessorStarted(accountingKinds[i])
		defer done()
	} else {
		run := w.kinds[i].Start()
		defer run.Finish()
	}
	panic("processor failed")
}

func TestProcessorAccountingModel(t *testing.T) {
	m, reader := newTestMetrics(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	workers := make([]*accountingWorker, accountingWorkers)
	for i := range workers {
		w := &accountingWorker{m: m, rng: rand.New(rand.NewPCG(seed, uint64(i))), live: map[string]int64{}}
		for _, k := range accountingKinds {
			w.kinds = append(w.kinds, m.Processor(k))
		}
		workers[i] = w
	}
	handoff := make(chan accountingRun, 256)

	// The concurrent reader: counts never go negative, even mid-phase.
	var (
		stop     = make(chan struct{})
		readerWG sync.WaitGroup
		reads    atomic.Int64
	)
	readerWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for k, n := range m.ActiveProcessorsByKind() {
				if n < 0 {
					t.Errorf("mid-phase: %s = %d", k, n)
					return
				}
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Errorf("collect: %v", err)
				return
			}
			for _, sm := range rm.ScopeMetrics {
				for _, mt := range sm.Metrics {
					if sum, ok := mt.Data.(metricdata.Sum[int64]); ok && mt.Name == MetricProcessorActive {
						for _, dp := range sum.DataPoints {
							if dp.Value < 0 {
								t.Errorf("mid-phase collection: %v = %d", dp.Attributes, dp.Value)
								return
							}
						}
					}
				}
			}
			reads.Add(1)
		}
	})

	perPhase := accountingOps / accountingWorkers / accountingPhases
	observe := func(when string) map[string]int64 {
		t.Helper()
		truth := map[string]int64{}
		var total int64
		for _, w := range workers {
			for k, n := range w.live {
				truth[k] += n
				total += n
			}
		}
		if got := m.ActiveProcessors(); got != total {
			t.Fatalf("%s: ActiveProcessors = %d, truth %d", when, got, total)
		}
		by := m.ActiveProcessorsByKind()
		got := collect(t, reader)
		for _, k := range accountingKinds {
			if by[k] != truth[k] {
				t.Fatalf("%s: ActiveProcessorsByKind[%s] = %d, truth %d", when, k, by[k], truth[k])
			}
			if v := got.mustValue(t, MetricProcessorActive, kindAttr(k)); v != float64(truth[k]) {
				t.Fatalf("%s: collected %s = %v, truth %d", when, k, v, truth[k])
			}
		}
		return truth
	}

	var peak int64
	for phase := range accountingPhases {
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() {
				for range perPhase {
					w.op(handoff)
				}
			})
		}
		wg.Wait() // the barrier: every worker paused
		truth := observe("after phase " + itoa(phase))
		var total int64
		for _, n := range truth {
			total += n
		}
		peak = max(peak, total)
	}

	// Finish everything: each worker its own runs, then the handed-over
	// done funcs nobody picked up.
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for len(w.runs) > 0 {
				w.finishOne()
			}
		})
	}
	wg.Wait()
	for len(handoff) > 0 {
		r := <-handoff
		r.finish()
		workers[0].live[r.kind]--
	}
	close(stop)
	readerWG.Wait()

	final := observe("at the end")
	for k, n := range final {
		if n != 0 {
			t.Fatalf("truth for %s ends at %d: the model lost track", k, n)
		}
	}
	if m.ActiveProcessors() != 0 {
		t.Fatal("processors left running")
	}
	t.Logf("%d operations, %d barriers, peak %d running, %d concurrent reads", accountingOps, accountingPhases+1, peak, reads.Load())
}
