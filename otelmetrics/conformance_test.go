package otelmetrics

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// TestConformance holds the processor and pool instruments to the semantic
// conventions (v1.43.0, database-metrics.md and naming.md): the
// conventions' connection instruments by the dbconv types' names, units and
// kinds, with their required attributes and nothing else; the pool's wait
// time as the conventions' histogram; no made-up name inside the
// conventions' db.client.connection.* namespace; the scope's schema URL.
func TestConformance(t *testing.T) {
	db := pgmqtest.New(t)
	pool := newTracedPool(t, db.URL, 2, NewPoolTracer())
	m, r := newTestMetrics(t, WithPool("", pool))
	run := m.Processor("k").Start()
	run.Finish()
	holdThenRelease(t, pool, time.Millisecond)

	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	type want struct {
		unit      string
		kind      string // "updown", "counter", "gauge", "histogram"
		attrs     []attribute.Key
		optional  bool // may have no point (idle.min without MinIdleConns)
		buckets   []float64
		monotonic bool
	}
	poolName := dbconv.ClientConnectionCountObservable{}.AttrClientConnectionPoolName("").Key
	state := dbconv.ClientConnectionCountObservable{}.AttrClientConnectionState("").Key
	wants := map[string]want{
		dbconv.ClientConnectionCountObservable{}.Name():   {unit: dbconv.ClientConnectionCountObservable{}.Unit(), kind: "updown", attrs: []attribute.Key{poolName, state}},
		dbconv.ClientConnectionMaxObservable{}.Name():     {unit: dbconv.ClientConnectionMaxObservable{}.Unit(), kind: "updown", attrs: []attribute.Key{poolName}},
		dbconv.ClientConnectionIdleMinObservable{}.Name(): {unit: dbconv.ClientConnectionIdleMinObservable{}.Unit(), kind: "updown", attrs: []attribute.Key{poolName}, optional: true},
		dbconv.ClientConnectionWaitTime{}.Name():          {unit: dbconv.ClientConnectionWaitTime{}.Unit(), kind: "histogram", attrs: []attribute.Key{poolName}, buckets: ConnectionWaitBuckets},
		MetricConnectionUtil:                              {unit: "1", kind: "gauge", attrs: []attribute.Key{poolName}},
		MetricAcquireWaits:                                {unit: "{acquire}", kind: "counter", attrs: []attribute.Key{poolName}, monotonic: true},
		MetricProcessorActive:                             {unit: "{processor}", kind: "updown", attrs: []attribute.Key{AttrProcessorKind}},
	}
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		if sm.Scope.SchemaURL != semconv.SchemaURL {
			t.Errorf("scope schema URL %q, want %q", sm.Scope.SchemaURL, semconv.SchemaURL)
		}
		for _, mt := range sm.Metrics {
			w, ok := wants[mt.Name]
			if !ok {
				t.Errorf("instrument %s is not in the conformance table", mt.Name)
				continue
			}
			seen[mt.Name] = true
			if mt.Unit != w.unit {
				t.Errorf("%s: unit %q, want %q", mt.Name, mt.Unit, w.unit)
			}
			var sets []attribute.Set
			kind := ""
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				kind = map[bool]string{true: "counter", false: "updown"}[d.IsMonotonic]
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Gauge[float64]:
				kind = "gauge"
				for _, p := range d.DataPoints {
					sets = append(sets, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				kind = "histogram"
				for _, p := range d.DataPoints {
					if !slices.Equal(p.Bounds, w.buckets) {
						t.Errorf("%s: buckets %v, want %v", mt.Name, p.Bounds, w.buckets)
					}
					sets = append(sets, p.Attributes)
				}
			}
			if kind != w.kind {
				t.Errorf("%s: %T is a %q, want a %q", mt.Name, mt.Data, kind, w.kind)
			}
			if len(sets) == 0 {
				t.Errorf("%s: no points", mt.Name)
			}
			for _, set := range sets {
				var keys []attribute.Key
				for _, kv := range set.ToSlice() {
					keys = append(keys, kv.Key)
				}
				if !slices.Equal(keys, w.attrs) {
					t.Errorf("%s: attributes %v, want exactly %v", mt.Name, keys, w.attrs)
				}
			}
		}
	}
	for name, w := range wants {
		if !seen[name] && !w.optional {
			t.Errorf("instrument %s recorded nothing", name)
		}
	}
	// naming.md: a name inside a namespace the conventions define must be
	// one of theirs.
	conventional := []string{dbconv.ClientConnectionCountObservable{}.Name(), dbconv.ClientConnectionMaxObservable{}.Name(),
		dbconv.ClientConnectionIdleMinObservable{}.Name(), dbconv.ClientConnectionWaitTime{}.Name()}
	for name := range wants {
		if strings.HasPrefix(name, "db.") && !slices.Contains(conventional, name) {
			t.Errorf("%s is not a conventions' name but sits in their db.* namespace", name)
		}
	}
}
