package deploycheck

import (
	"compress/gzip"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/pgmqotel/pgmqotel/e2e/internal/fakeapp"
	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// intake stands in for Datadog's OTLP metrics intake: an HTTPS endpoint
// taking OTLP/HTTP protobuf on /v1/metrics. It records the API key header
// and the points of the sums it receives.
type intake struct {
	mu      sync.Mutex
	apiKeys map[string]bool
	sums    map[string][]sumPoint // metric name -> points in arrival order
	errs    []error
}

type sumPoint struct {
	temporality pmetric.AggregationTemporality
	monotonic   bool
	value       float64
}

func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := in.record(r); err != nil {
		in.mu.Lock()
		in.errs = append(in.errs, err)
		in.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, _ := pmetricotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(body)
}

func (in *intake) record(r *http.Request) error {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/metrics" {
		return fmt.Errorf("unexpected %s %s", r.Method, r.URL.Path)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return err
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		return fmt.Errorf("decode OTLP (%s): %w", r.Header.Get("Content-Type"), err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.apiKeys[r.Header.Get("dd-api-key")] = true
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if m.Type() != pmetric.MetricTypeSum {
					continue
				}
				dps := m.Sum().DataPoints()
				for p := range dps.Len() {
					dp := dps.At(p)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					in.sums[m.Name()] = append(in.sums[m.Name()], sumPoint{m.Sum().AggregationTemporality(), m.Sum().IsMonotonic(), v})
				}
			}
		}
	}
	return nil
}

func (in *intake) points(name string) []sumPoint {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]sumPoint(nil), in.sums[name]...)
}

// TestDatadogOverlay runs the collector with collector/datadog.yaml against
// a local HTTPS stand-in for Datadog's intake. The intake must get the API
// key and delta counters whose deltas add up to the counter's value, while
// UpDownCounters stay cumulative and the Prometheus exporter keeps the
// cumulative value.
func TestDatadogOverlay(t *testing.T) {
	in := &intake{apiKeys: map[string]bool{}, sums: map[string][]sumPoint{}}
	srv := httptest.NewTLSServer(in)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "intake-ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemCert, 0o644); err != nil {
		t.Fatal(err)
	}

	c, err := stack.StartCollector(context.Background(), stack.CollectorOptions{
		Dir:     dir,
		Configs: []string{"collector/datadog.yaml"},
		Env: []string{
			"DD_OTLP_ENDPOINT=" + srv.URL, // https://127.0.0.1:<port>
			"DD_OTLP_CA_FILE=" + caFile,
			"DD_API_KEY=test-api-key",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopCollector(t, c) })
	for _, kv := range c.OTLPEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("OTEL_SERVICE_NAME", "orchestrator")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")
	shutdown, err := fakeapp.Start(context.Background(), fakeapp.Replica{
		InstanceID: "dd-1", Processors: map[string]int64{"worker": 2},
		Pool: "main", Used: 1, Idle: 3, Max: 4,
		ServerAddress: "pg.internal", ServerPort: 5432, Database: "app", Queue: "jobs", Sent: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shut down fake app: %v", err)
		}
	})

	// Several exports: the deltas after the first must be 0 for a flat counter.
	stack.WaitFor(t, stack.DefaultTimeout, "three exports of pgmq.queue.sent.messages at the intake", func(context.Context) error {
		if n := len(in.points("pgmq.queue.sent.messages")); n < 3 {
			return fmt.Errorf("%d point(s) so far", n)
		}
		return nil
	})
	in.mu.Lock()
	errs, keys := in.errs, in.apiKeys
	in.mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("intake errors: %v", errs)
	}
	if len(keys) != 1 || !keys["test-api-key"] {
		t.Errorf("dd-api-key headers %v, want only test-api-key", keys)
	}
	var total float64
	for _, p := range in.points("pgmq.queue.sent.messages") {
		if p.temporality != pmetric.AggregationTemporalityDelta || !p.monotonic {
			t.Errorf("pgmq.queue.sent.messages point %+v, want a monotonic delta", p)
		}
		total += p.value
	}
	if total != 100 {
		t.Errorf("deltas of pgmq.queue.sent.messages add up to %v, want 100", total)
	}
	active := in.points("orchestration.processor.active")
	if len(active) == 0 {
		t.Fatal("no orchestration.processor.active at the intake")
	}
	for _, p := range active {
		if p.temporality != pmetric.AggregationTemporalityCumulative || p.monotonic || p.value != 2 {
			t.Errorf("orchestration.processor.active point %+v, want cumulative non-monotonic 2", p)
		}
	}
	got, found, err := c.ExportedMetric(context.Background(), "pgmq_queue_sent_messages_total", map[string]string{"messaging_destination_name": "jobs"})
	if err != nil || !found || got != 100 {
		t.Errorf("prometheus exporter: pgmq_queue_sent_messages_total = %v (found %v, err %v), want cumulative 100", got, found, err)
	}
}
