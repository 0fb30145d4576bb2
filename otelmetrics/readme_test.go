package otelmetrics

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
)

// recordingMeter records each instrument created through it.
type recordingMeter struct {
	noop.Meter
	instruments map[string]string // name -> "kind unit"
}

func (m *recordingMeter) add(name, kind, unit string) { m.instruments[name] = kind + " " + unit }

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

type recordingProvider struct {
	embedded.MeterProvider
	meter *recordingMeter
}

func (p recordingProvider) Meter(string, ...metric.MeterOption) metric.Meter { return p.meter }

// TestReadmeMetricsTableMatchesCode keeps README.md's metrics table in step
// with the instruments New creates: same names, instrument kinds and units.
func TestReadmeMetricsTableMatchesCode(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none") // never connects
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rec := &recordingMeter{instruments: map[string]string{}}
	m, err := New(WithMeterProvider(recordingProvider{meter: rec}), WithPool("p", pool), WithQueueSampling(pool))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile("(?s)<!-- metrics:start -->(.*)<!-- metrics:end -->").FindSubmatch(readme)
	if table == nil {
		t.Fatal("README.md has no <!-- metrics:start --> ... <!-- metrics:end --> table")
	}
	documented := map[string]string{}
	row := regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*([^|]+?)\\s*\\|\\s*`([^`]*)`\\s*\\|")
	for _, line := range strings.Split(string(table[1]), "\n") {
		if mm := row.FindStringSubmatch(line); mm != nil && !tracingMetric(mm[1]) {
			documented[mm[1]] = mm[2] + " " + mm[3]
		}
	}
	var names []string
	for n := range rec.instruments {
		names = append(names, n)
	}
	for n := range documented {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		code, inCode := rec.instruments[n]
		doc, inDoc := documented[n]
		switch {
		case !inDoc:
			t.Errorf("%s (%s) is registered but not in README.md", n, code)
		case !inCode:
			t.Errorf("%s is in README.md but not registered", n)
		case code != doc:
			t.Errorf("%s: code says %q, README.md says %q", n, code, doc)
		}
	}
}

// tracingMetric reports whether a README row belongs to package otelpgmq,
// whose own test checks those rows.
func tracingMetric(name string) bool {
	return strings.HasPrefix(name, "messaging.") || strings.HasPrefix(name, "pgmq.message.")
}
