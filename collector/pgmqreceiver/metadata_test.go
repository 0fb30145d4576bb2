package pgmqreceiver

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
)

// metadataFile is the part of metadata.yaml the hand-written code mirrors.
type metadataFile struct {
	Type       string `yaml:"type"`
	Attributes map[string]struct {
		Description string   `yaml:"description"`
		Type        string   `yaml:"type"`
		Enum        []string `yaml:"enum"`
	} `yaml:"attributes"`
	Metrics map[string]struct {
		Enabled     bool   `yaml:"enabled"`
		Description string `yaml:"description"`
		Unit        string `yaml:"unit"`
		Gauge       *struct {
			ValueType string `yaml:"value_type"`
		} `yaml:"gauge"`
		Sum *struct {
			ValueType   string `yaml:"value_type"`
			Monotonic   bool   `yaml:"monotonic"`
			Temporality string `yaml:"aggregation_temporality"`
		} `yaml:"sum"`
		Attributes []string `yaml:"attributes"`
	} `yaml:"metrics"`
}

func readMetadata(t *testing.T) metadataFile {
	t.Helper()
	b, err := os.ReadFile("metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var md metadataFile
	if err := yaml.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	return md
}

// recordOne records one point of every metric.
func recordOne(mb *metadata.MetricsBuilder) {
	ts := pcommon.NewTimestampFromTime(timeZero)
	mb.RecordPgmqQueueDepthDataPoint(ts, 1, metadata.AttributeMessagingSystemPgmq, "q", metadata.AttributePgmqMessageStateVisible,
		metadata.AttributePgmqDepthMethodCount, "h", 5432, "d")
	mb.RecordPgmqQueueOldestMessageAgeDataPoint(ts, 1.5, metadata.AttributeMessagingSystemPgmq, "q", "h", 5432, "d")
	mb.RecordPgmqQueueSentMessagesDataPoint(ts, 1, metadata.AttributeMessagingSystemPgmq, "q", "h", 5432, "d")
	mb.RecordPgmqSamplerErrorsDataPoint(ts, 1, "timeout", "h", 5432, "d")
}

// metadata.yaml, the hand-written builder, documentation.md and
// otelmetrics' names agree: every metric's name, unit, description, type,
// value type, temporality and attributes (keys, types, enum values).
func TestMetadataMatchesBuilder(t *testing.T) {
	md := readMetadata(t)
	if md.Type != metadata.Type.String() {
		t.Fatalf("type %q, code %q", md.Type, metadata.Type)
	}
	mb := metadata.NewMetricsBuilder(metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	recordOne(mb)
	emitted := mb.Emit()
	if sm := emitted.ResourceMetrics().At(0).ScopeMetrics().At(0); sm.Scope().Name() != metadata.ScopeName {
		t.Fatalf("scope %q", sm.Scope().Name())
	}
	got := map[string]pmetric.Metric{}
	ms := emitted.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		got[ms.At(i).Name()] = ms.At(i)
	}
	if len(got) != len(md.Metrics) {
		t.Fatalf("builder emits %d metrics, metadata.yaml declares %d", len(got), len(md.Metrics))
	}
	doc, err := os.ReadFile("documentation.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range md.Metrics {
		m, ok := got[name]
		if !ok {
			t.Errorf("%s: not emitted", name)
			continue
		}
		if !want.Enabled || m.Unit() != want.Unit || m.Description() != want.Description {
			t.Errorf("%s: unit %q description %q, metadata.yaml %+v", name, m.Unit(), m.Description(), want)
		}
		var dp pmetric.NumberDataPoint
		var kind, valueType string
		switch {
		case want.Gauge != nil && m.Type() == pmetric.MetricTypeGauge:
			dp, kind, valueType = m.Gauge().DataPoints().At(0), "Gauge", want.Gauge.ValueType
		case want.Sum != nil && m.Type() == pmetric.MetricTypeSum:
			dp, kind, valueType = m.Sum().DataPoints().At(0), "Sum", want.Sum.ValueType
			if m.Sum().IsMonotonic() != want.Sum.Monotonic || !strings.EqualFold(m.Sum().AggregationTemporality().String(), want.Sum.Temporality) {
				t.Errorf("%s: monotonic %v temporality %v", name, m.Sum().IsMonotonic(), m.Sum().AggregationTemporality())
			}
		default:
			t.Errorf("%s: type %v, metadata.yaml %+v", name, m.Type(), want)
			continue
		}
		docValue := map[string]string{"int": "Int", "double": "Double"}[valueType]
		if (valueType == "int") != (dp.ValueType() == pmetric.NumberDataPointValueTypeInt) {
			t.Errorf("%s: value type %v, metadata.yaml %s", name, dp.ValueType(), valueType)
		}
		var keys []string
		for k, v := range dp.Attributes().All() {
			keys = append(keys, k)
			if typ := md.Attributes[k].Type; (typ == "int") != (v.Type() == pcommon.ValueTypeInt) {
				t.Errorf("%s: attribute %s is %v, metadata.yaml says %s", name, k, v.Type(), typ)
			}
		}
		if !sameSet(keys, want.Attributes) {
			t.Errorf("%s: attributes %v, metadata.yaml %v", name, keys, want.Attributes)
		}
		section := docSection(string(doc), name)
		if !strings.Contains(section, want.Description) || !strings.Contains(section, "| "+want.Unit+" | "+kind+" | "+docValue+" |") {
			t.Errorf("documentation.md: section %s does not describe it as %s %s %s", name, want.Unit, kind, docValue)
		}
		for _, a := range want.Attributes {
			if !strings.Contains(section, "| "+a+" | "+md.Attributes[a].Description+" |") {
				t.Errorf("documentation.md: section %s lacks attribute %s", name, a)
			}
		}
	}
	for attr, enum := range map[string][]string{
		"messaging.system":   keysOf(metadata.MapAttributeMessagingSystem),
		"pgmq.message.state": keysOf(metadata.MapAttributePgmqMessageState),
		"pgmq.depth.method":  keysOf(metadata.MapAttributePgmqDepthMethod),
	} {
		if !sameSet(enum, md.Attributes[attr].Enum) {
			t.Errorf("%s: values %v, metadata.yaml %v", attr, enum, md.Attributes[attr].Enum)
		}
	}
}

// The receiver's names are otelmetrics' names.
func TestNamesAreOtelmetricsNames(t *testing.T) {
	md := readMetadata(t)
	for _, name := range []string{otelmetrics.MetricQueueDepth, otelmetrics.MetricQueueOldestAge, otelmetrics.MetricQueueSent, otelmetrics.MetricSamplerErrors} {
		if _, ok := md.Metrics[name]; !ok {
			t.Errorf("metadata.yaml lacks %s", name)
		}
	}
	for _, attr := range []string{otelmetrics.AttrMessagingSystem, otelmetrics.AttrDestinationName, otelmetrics.AttrMessageState,
		otelmetrics.AttrDepthMethod, otelmetrics.AttrErrorType, "server.address", "server.port", "db.namespace"} {
		if _, ok := md.Attributes[attr]; !ok {
			t.Errorf("metadata.yaml lacks attribute %s", attr)
		}
	}
	if !sameSet(md.Attributes[otelmetrics.AttrDepthMethod].Enum, []string{otelmetrics.DepthMethodCount, otelmetrics.DepthMethodEstimate}) {
		t.Errorf("pgmq.depth.method values %v", md.Attributes[otelmetrics.AttrDepthMethod].Enum)
	}
}

// A metric disabled in the configuration is not emitted.
func TestDisabledMetricNotEmitted(t *testing.T) {
	cfg := metadata.DefaultMetricsBuilderConfig()
	cfg.Metrics.PgmqQueueSentMessages.Enabled = false
	mb := metadata.NewMetricsBuilder(cfg, receivertest.NewNopSettings(metadata.Type))
	recordOne(mb)
	ms := mb.Emit().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		if ms.At(i).Name() == "pgmq.queue.sent.messages" {
			t.Fatal("disabled metric emitted")
		}
	}
	if ms.Len() != 3 {
		t.Fatalf("%d metrics, want 3", ms.Len())
	}
}

// docSection is the part of documentation.md under the heading of metric.
func docSection(doc, metric string) string {
	_, rest, ok := strings.Cut(doc, "### "+metric+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n### "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
