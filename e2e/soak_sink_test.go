//go:build linux

package e2e_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// depthKey identifies one replica's depth of one queue at one collection.
type depthKey struct {
	instance string
	at       time.Time
	queue    string
}

// depthSum is a queue's depth at one collection: visible plus invisible,
// and whether either was an estimate.
type depthSum struct {
	value     int64
	states    int
	estimated bool
}

// errorPoint is a replica's pgmq.sampler.errors total at one collection.
type errorPoint struct {
	instance string
	at       time.Time
	total    float64
}

// depthSink is the end of the Collector's metrics pipeline in the soak: an
// OTLP receiver keeping every queue depth and sampler error point the
// Collector delivered, compactly (an hour of them fits in memory).
type depthSink struct {
	addr string

	mu     sync.Mutex
	depths map[depthKey]*depthSum
	errors []errorPoint
	points int // depth data points received
}

// startDepthSink starts the receiver (gRPC) on a loopback address.
func startDepthSink(t *testing.T) *depthSink {
	t.Helper()
	s := &depthSink{addr: freeLoopbackAddr(t), depths: map[depthKey]*depthSum{}}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = s.addr
	next, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		s.consume(md)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatalf("create the soak's OTLP receiver: %v", err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start the soak's OTLP receiver: %v", err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return s
}

func (s *depthSink) consume(md pmetric.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rm := range md.ResourceMetrics().All() {
		instance := str(rm.Resource().Attributes(), "service.instance.id")
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Name() {
				case "pgmq.queue.depth":
					for _, dp := range numberPoints(m).All() {
						s.points++
						k := depthKey{instance: instance, at: dp.Timestamp().AsTime(), queue: str(dp.Attributes(), "messaging.destination.name")}
						d := s.depths[k]
						if d == nil {
							d = &depthSum{}
							s.depths[k] = d
						}
						d.value += int64(numberValue(dp))
						d.states++
						d.estimated = d.estimated || str(dp.Attributes(), "pgmq.depth.method") == "estimate"
					}
				case "pgmq.sampler.errors":
					byTime := map[time.Time]float64{}
					for _, dp := range numberPoints(m).All() {
						byTime[dp.Timestamp().AsTime()] += numberValue(dp)
					}
					for at, total := range byTime {
						s.errors = append(s.errors, errorPoint{instance: instance, at: at, total: total})
					}
				}
			}
		}
	}
}

// depthRecord is one received depth, for the checks.
type depthRecord struct {
	depthKey
	depthSum
}

// snapshot returns the depths received, by time, and the error points.
func (s *depthSink) snapshot() ([]depthRecord, []errorPoint, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]depthRecord, 0, len(s.depths))
	for k, d := range s.depths {
		out = append(out, depthRecord{k, *d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	errs := append([]errorPoint(nil), s.errors...)
	sort.Slice(errs, func(i, j int) bool { return errs[i].at.Before(errs[j].at) })
	return out, errs, s.points
}

// received reports whether any depth point arrived after t.
func (s *depthSink) receivedAfter(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.depths {
		if k.at.After(t) {
			return true
		}
	}
	return false
}
