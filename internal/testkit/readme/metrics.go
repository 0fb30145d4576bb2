// Package readme keeps README.md and docs/ honest: its test compiles their Go
// snippets, and CheckMetricsTable lets each instrumented package hold the
// metrics table of docs/metrics.md to the instruments it registers.
package readme

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
)

// Recorder is a MeterProvider whose meter records each instrument created
// through it as "kind unit" by name, the way the README's table writes
// them ("Counter", "Histogram", "Counter (async)", "Gauge (async)", ...).
type Recorder struct {
	embedded.MeterProvider
	meter recordingMeter
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{meter: recordingMeter{instruments: map[string]string{}}}
}

// Meter implements metric.MeterProvider.
func (r *Recorder) Meter(string, ...metric.MeterOption) metric.Meter { return &r.meter }

// Instruments returns what was registered: name -> "kind unit".
func (r *Recorder) Instruments() map[string]string { return r.meter.instruments }

type recordingMeter struct {
	noop.Meter
	instruments map[string]string
}

func (m *recordingMeter) add(name, kind, unit string) { m.instruments[name] = kind + " " + unit }

func (m *recordingMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	m.add(name, "Counter", metric.NewInt64CounterConfig(opts...).Unit())
	return m.Meter.Int64Counter(name, opts...)
}

func (m *recordingMeter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	m.add(name, "Histogram", metric.NewFloat64HistogramConfig(opts...).Unit())
	return m.Meter.Float64Histogram(name, opts...)
}

func (m *recordingMeter) Int64ObservableUpDownCounter(name string, opts ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	m.add(name, "UpDownCounter (async)", metric.NewInt64ObservableUpDownCounterConfig(opts...).Unit())
	return m.Meter.Int64ObservableUpDownCounter(name, opts...)
}

func (m *recordingMeter) Int64ObservableCounter(name string, opts ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	m.add(name, "Counter (async)", metric.NewInt64ObservableCounterConfig(opts...).Unit())
	return m.Meter.Int64ObservableCounter(name, opts...)
}

func (m *recordingMeter) Float64ObservableCounter(name string, opts ...metric.Float64ObservableCounterOption) (metric.Float64ObservableCounter, error) {
	m.add(name, "Counter (async)", metric.NewFloat64ObservableCounterConfig(opts...).Unit())
	return m.Meter.Float64ObservableCounter(name, opts...)
}

func (m *recordingMeter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	m.add(name, "Gauge (async)", metric.NewInt64ObservableGaugeConfig(opts...).Unit())
	return m.Meter.Int64ObservableGauge(name, opts...)
}

func (m *recordingMeter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	m.add(name, "Gauge (async)", metric.NewFloat64ObservableGaugeConfig(opts...).Unit())
	return m.Meter.Float64ObservableGauge(name, opts...)
}

var (
	tableRE = regexp.MustCompile("(?s)<!-- metrics:start -->(.*)<!-- metrics:end -->")
	rowRE   = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*([^|]+?)\\s*\\|\\s*`([^`]*)`\\s*\\|")
)

// CheckMetricsTable compares the rows of the metrics table of the file at
// path (docs/metrics.md; between
// <!-- metrics:start --> and <!-- metrics:end -->) whose name owns accepts
// with registered (name -> "kind unit", from a Recorder): every instrument
// documented, every documented one registered, kinds and units alike.
func CheckMetricsTable(t testing.TB, readmePath string, owns func(name string) bool, registered map[string]string) {
	t.Helper()
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	table := tableRE.FindSubmatch(readme)
	if table == nil {
		t.Fatalf("%s has no <!-- metrics:start --> ... <!-- metrics:end --> table", readmePath)
	}
	documented := map[string]string{}
	for _, line := range strings.Split(string(table[1]), "\n") {
		if mm := rowRE.FindStringSubmatch(line); mm != nil && owns(mm[1]) {
			documented[mm[1]] = mm[2] + " " + mm[3]
		}
	}
	var names []string
	for n := range registered {
		names = append(names, n)
	}
	for n := range documented {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		code, inCode := registered[n]
		doc, inDoc := documented[n]
		switch {
		case !inDoc:
			t.Errorf("%s (%s) is registered but not in the metrics table", n, code)
		case !inCode:
			t.Errorf("%s is in the metrics table but not registered", n)
		case code != doc:
			t.Errorf("%s: code says %q, the metrics table says %q", n, code, doc)
		}
	}
}

// TracingMetric reports whether a metrics-table row belongs to package
// otelpgmq (messaging.*, pgmq.message.*); otelmetrics owns the others.
func TracingMetric(name string) bool {
	return strings.HasPrefix(name, "messaging.") || strings.HasPrefix(name, "pgmq.message.")
}
