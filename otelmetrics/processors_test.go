package otelmetrics

import (
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func kindAttr(k string) attribute.KeyValue { return attribute.String(AttrProcessorKind, k) }

func TestProcessorsStartAndFinish(t *testing.T) {
	m, r := newTestMetrics(t)
	if got := m.ActiveProcessors(); got != 0 {
		t.Fatalf("initial active = %d, want 0", got)
	}
	if pts := collect(t, r).points(MetricProcessorActive); len(pts) != 0 {
		t.Fatalf("points before any processor: %v", pts)
	}

	k := m.Processor("payments")
	a := k.Start()
	done := m.ProcessorStarted("payments")
	if got := collect(t, r).mustValue(t, MetricProcessorActive, kindAttr("payments")); got != 2 {
		t.Fatalf("after two starts: %v, want 2", got)
	}
	if got := m.ActiveProcessors(); got != 2 {
		t.Fatalf("ActiveProcessors = %d, want 2", got)
	}
	a.Finish()
	if got := collect(t, r).mustValue(t, MetricProcessorActive, kindAttr("payments")); got != 1 {
		t.Fatalf("after one finish: %v, want 1", got)
	}
	done()
	if got := collect(t, r).mustValue(t, MetricProcessorActive, kindAttr("payments")); got != 0 {
		t.Fatalf("after both finished: %v, want 0 (an idle kind keeps reporting 0)", got)
	}
}

func TestProcessorsPerKind(t *testing.T) {
	m, r := newTestMetrics(t)
	e := m.Processor("email").Start()
	defer e.Finish()
	s1 := m.Processor("sms").Start()
	defer s1.Finish()
	s2 := m.Processor("sms").Start()
	defer s2.Finish()

	c := collect(t, r)
	if got := c.mustValue(t, MetricProcessorActive, kindAttr("email")); got != 1 {
		t.Errorf("email = %v, want 1", got)
	}
	if got := c.mustValue(t, MetricProcessorActive, kindAttr("sms")); got != 2 {
		t.Errorf("sms = %v, want 2", got)
	}
	by := m.ActiveProcessorsByKind()
	if by["email"] != 1 || by["sms"] != 2 || len(by) != 2 {
		t.Errorf("ActiveProcessorsByKind = %v", by)
	}
	if first, again := m.Processor("sms"), m.Processor("sms"); first != again {
		t.Error("Processor returns a new counter for a known kind")
	}
}

func TestProcessorsDoubleFinishIsIdempotent(t *testing.T) {
	m, _ := newTestMetrics(t)
	k := m.Processor("k")
	other := k.Start()
	defer other.Finish()

	run := k.Start()
	run.Finish()
	run.Finish()
	done := m.ProcessorStarted("k")
	done()
	done()
	if got := k.Active(); got != 1 {
		t.Fatalf("after double finishes: %d, want 1 (only the other run)", got)
	}
	var zero ProcessorRun
	zero.Finish()
	if got := k.Active(); got != 1 {
		t.Fatalf("finishing a zero run changed the count to %d", got)
	}
}

func TestProcessorsPanicStillDecrements(t *testing.T) {
	m, r := newTestMetrics(t)
	k := m.Processor("panicky")
	work := func() {
		run := k.Start()
		defer run.Finish()
		done := m.ProcessorStarted("panicky")
		defer done()
		panic("processor failed")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("expected a panic")
			}
		}()
		work()
	}()
	if got := collect(t, r).mustValue(t, MetricProcessorActive, kindAttr("panicky")); got != 0 {
		t.Fatalf("after panic: %v, want 0", got)
	}
}

func TestProcessorsConcurrentEndAtZero(t *testing.T) {
	m, r := newTestMetrics(t)
	const goroutines = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			kind := []string{"a", "b", "c"}[i%3]
			if i%2 == 0 {
				run := m.Processor(kind).Start()
				defer run.Finish()
			} else {
				done := m.ProcessorStarted(kind)
				defer done()
				defer done() // a double call under contention must not go negative
			}
			if m.ActiveProcessors() < 0 {
				t.Error("negative count observed")
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := m.ActiveProcessors(); got != 0 {
		t.Fatalf("after all finished: %d, want 0", got)
	}
	c := collect(t, r)
	for _, k := range []string{"a", "b", "c"} {
		if got := c.mustValue(t, MetricProcessorActive, kindAttr(k)); got != 0 {
			t.Errorf("kind %s = %v, want 0", k, got)
		}
	}
}

// Start and Finish allocate nothing, as ProcessorKind promises.
func TestProcessorStartFinishNoAlloc(t *testing.T) {
	m, _ := newTestMetrics(t)
	k := m.Processor("alloc")
	if n := testing.AllocsPerRun(1000, func() {
		run := k.Start()
		run.Finish()
	}); n != 0 {
		t.Errorf("Start+Finish: %v allocations, want 0", n)
	}
	if k.Active() != 0 {
		t.Errorf("Active() = %d after balanced runs", k.Active())
	}
}
