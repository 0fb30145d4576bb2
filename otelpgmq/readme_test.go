package otelpgmq_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/pgmqotel/pgmqotel/otelpgmq"
)

// recordingMeter records each instrument created through it.
type recordingMeter struct {
	noop.Meter
	instruments map[string]string // name -> "kind unit"
}

func (m *recordingMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	m.instruments[name] = "Counter " + metric.NewInt64CounterConfig(opts...).Unit()
	return m.Meter.Int64Counter(name, opts...)
}

func (m *recordingMeter) Int64ObservableCounter(name string, opts ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	m.instruments[name] = "Counter (async) " + metric.NewInt64ObservableCounterConfig(opts...).Unit()
	return m.Meter.Int64ObservableCounter(name, opts...)
}

func (m *recordingMeter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	m.instruments[name] = "Histogram " + metric.NewFloat64HistogramConfig(opts...).Unit()
	return m.Meter.Float64Histogram(name, opts...)
}

type recordingProvider struct {
	embedded.MeterProvider
	meter *recordingMeter
}

func (p recordingProvider) Meter(string, ...metric.MeterOption) metric.Meter { return p.meter }

// TestReadmeMetricsTableMatchesCode keeps the messaging rows of README.md's
// metrics table (messaging.*, pgmq.message.*; otelmetrics' test checks the
// others) in step with the instruments NewTracer creates.
func TestReadmeMetricsTableMatchesCode(t *testing.T) {
	rec := &recordingMeter{instruments: map[string]string{}}
	otelpgmq.NewTracer(otelpgmq.WithMeterProvider(recordingProvider{meter: rec}))

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
		mm := row.FindStringSubmatch(line)
		if mm != nil && (strings.HasPrefix(mm[1], "messaging.") || strings.HasPrefix(mm[1], "pgmq.message.")) {
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
	if len(rec.instruments) != 7 {
		t.Errorf("NewTracer registered %d instruments, want 7: %v", len(rec.instruments), rec.instruments)
	}
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
