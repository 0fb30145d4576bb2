package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/pgmqotel/pgmqotel/otelsetup"
)

// TestMain fails the package if a goroutine outlives the tests: run must
// stop every producer, processor, pool, sampler and server it starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is a fast configuration for tests; callers adjust it.
func testConfig(databaseURL string) Config {
	return Config{
		DatabaseURL: databaseURL,
		Queue:       "task_requests",
		Processors:  2,
		Rate:        20,
		Work:        20 * time.Millisecond,
		FailRate:    0,
		VT:          time.Second,
		HealthAddr:  "127.0.0.1:0",
		Summary:     0,
		Grace:       30 * time.Second,
	}
}

// running is one run of the orchestrator in the test process.
type running struct {
	url    string // of /healthz
	reader *sdkmetric.ManualReader
	out    *syncBuffer
	cancel context.CancelFunc // as SIGTERM does
	done   chan error         // run's result
}

// start runs the orchestrator with a ManualReader next to (instead of) the
// OTLP exporter, and stops it at the end of the test if the test has not.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	t.Setenv("OTEL_METRICS_EXPORTER", "none") // no collector here; the reader is read directly
	t.Setenv("OTEL_TRACES_EXPORTER", "none")  // spans go to cfg.spanProcessor, if set
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		url:    "http://" + ln.Addr().String() + healthPath,
		reader: sdkmetric.NewManualReader(),
		out:    &syncBuffer{},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { r.done <- run(ctx, cfg, ln, r.out, otelsetup.WithReader(r.reader)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Errorf("run did not return within a minute of its cancellation")
		}
		if t.Failed() {
			t.Logf("orchestrator output:\n%s", r.out.String())
		}
	})
	return r
}

// stop cancels the run, as SIGTERM does, and returns run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(time.Minute):
		t.Fatalf("run did not return within a minute of its cancellation")
		return nil
	}
}

// report is the part of /healthz the tests read.
type report struct {
	ActiveProcessors int64            `json:"active_processors"`
	Processors       map[string]int64 `json:"processors"`
	Pools            map[string]struct {
		Utilization float64 `json:"utilization"`
		Used        int32   `json:"used"`
		Idle        int32   `json:"idle"`
		Max         int32   `json:"max"`
	} `json:"pools"`
	Databases []struct {
		Queues map[string]struct {
			Depth            *int64   `json:"depth"`
			Visible          *int64   `json:"visible"`
			Invisible        *int64   `json:"invisible"`
			OldestAgeSeconds *float64 `json:"oldest_age_seconds"`
		} `json:"queues"`
	} `json:"databases"`
	Database struct {
		Healthy bool   `json:"healthy"`
		Error   string `json:"error"`
	} `json:"database"`
	Tasks taskCounts `json:"tasks"`
}

// get fetches /healthz and returns the status, the decoded report and the
// raw body.
func (r *running) get(t *testing.T) (int, report, map[string]any) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(r.url)
	if err != nil {
		t.Fatalf("GET %s: %v", r.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", r.url, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, body)
	}
	var rep report
	var raw map[string]any
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return resp.StatusCode, rep, raw
}

// waitFor polls cond every 20ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue collects from the reader and returns the value of the point
// of name having the attribute kv, and whether there is one.
func metricValue(t *testing.T, reader sdkmetric.Reader, name string, kv attribute.KeyValue) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if v, ok := p.Attributes.Value(kv.Key); ok && v == kv.Value {
						return float64(p.Value), true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if v, ok := p.Attributes.Value(kv.Key); ok && v == kv.Value {
						return float64(p.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if v, ok := p.Attributes.Value(kv.Key); ok && v == kv.Value {
						return p.Value, true
					}
				}
			}
		}
	}
	return 0, false
}

// syncBuffer is a bytes.Buffer safe for the orchestrator's goroutines and
// the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
