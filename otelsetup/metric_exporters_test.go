package otelsetup

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// scrape fetches the Prometheus exposition at addr.
func scrape(addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(b), err
}

// captureStdout points os.Stdout at a pipe until the returned function is
// called, which restores it and returns what was written.
func captureStdout(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	prev := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	restored := false
	restore := func() string {
		if restored {
			return ""
		}
		restored = true
		os.Stdout = prev
		_ = w.Close()
		return <-out
	}
	t.Cleanup(func() { restore() })
	return restore
}

// Each OTEL_METRICS_EXPORTER value exports through the real thing: an OTLP
// receiver, a Prometheus scrape of the served endpoint, standard output.
// Single exact names go through autoexport, lists and other spellings
// through this package's builders; both are covered.
func TestMetricsExporterValues(t *testing.T) {
	cases := []struct {
		value                  string
		otlp, scraped, console bool
	}{
		{value: "otlp", otlp: true},
		{value: "OTLP", otlp: true},
		{value: "prometheus", scraped: true},
		{value: " Prometheus ", scraped: true},
		{value: "console", console: true},
		{value: "console,none", console: true},
		{value: "otlp,prometheus", otlp: true, scraped: true},
		{value: "prometheus, console, otlp", otlp: true, scraped: true, console: true},
		{value: "none"},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			cleanEnv(t)
			sink := startSink(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
			promAddr := deadAddr(t)
			host, port, _ := net.SplitHostPort(promAddr)
			t.Setenv(envPromHost, host)
			t.Setenv(envPromPort, port)
			t.Setenv(envMetricsExporter, tc.value)
			stdout := captureStdout(t)

			p := newProvider(t)
			addOne(t, p, "exported.count", 5)
			body, scrapeErr := scrape(promAddr)
			shutdown(t, p)
			printed := stdout()

			if v, ok := sink.lastSum("exported.count"); tc.otlp != (ok && v == 5) {
				t.Errorf("OTLP receiver got %d (present %v); want it: %v", v, ok, tc.otlp)
			}
			if tc.scraped {
				if scrapeErr != nil || !strings.Contains(body, "exported_count_total") || !strings.Contains(body, "} 5") {
					t.Errorf("scrape of %s: %v\n%s", promAddr, scrapeErr, body)
				}
				if _, err := scrape(promAddr); err == nil {
					t.Error("the Prometheus server still answers after Shutdown")
				}
			} else if scrapeErr == nil {
				t.Errorf("a Prometheus endpoint answered at %s", promAddr)
			}
			if got := strings.Contains(printed, `"exported.count"`); got != tc.console {
				t.Errorf("console printed the metric: %v, want %v\n%s", got, tc.console, printed)
			}
		})
	}
}

// A busy Prometheus port fails NewMeterProvider at once, naming the address
// and the variables that set it, whichever path builds the reader.
func TestPrometheusPortBusy(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	host, port, _ := net.SplitHostPort(lis.Addr().String())
	for _, v := range []string{"prometheus", "otlp,prometheus"} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+deadAddr(t))
			t.Setenv(envMetricsExporter, v)
			t.Setenv(envPromHost, host)
			t.Setenv(envPromPort, port)
			p, err := NewMeterProvider(context.Background())
			if err == nil {
				shutdown(t, p)
				t.Fatal("NewMeterProvider succeeded on a busy port")
			}
			if !strings.Contains(err.Error(), lis.Addr().String()) {
				t.Fatalf("error %q does not name %s", err, lis.Addr())
			}
		})
	}
}

// The OTLP exporter can be wrapped (the election's export health does).
func TestOTLPExporterWrapper(t *testing.T) {
	cleanEnv(t)
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	var exports countingExporterCalls
	p := newProvider(t, WithOTLPMetricExporterWrapper(nil), WithOTLPMetricExporterWrapper(exports.wrap))
	addOne(t, p, "wrapped.count", 2)
	shutdown(t, p)
	// Shutdown flushes, then the reader exports once more as it stops.
	if n := exports.n.Load(); n != 2 {
		t.Fatalf("wrapper saw %d exports, want 2", n)
	}
	if v, ok := sink.lastSum("wrapped.count"); !ok || v != 2 {
		t.Fatalf("wrapped.count = %d (present %v), want 2", v, ok)
	}
}

// countingExporterCalls wraps an exporter and counts its exports.
type countingExporterCalls struct{ n atomic.Int64 }

func (c *countingExporterCalls) wrap(e sdkmetric.Exporter) sdkmetric.Exporter {
	return countingExporter{Exporter: e, n: &c.n}
}

type countingExporter struct {
	sdkmetric.Exporter
	n *atomic.Int64
}

func (e countingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	e.n.Add(1)
	return e.Exporter.Export(ctx, rm)
}
