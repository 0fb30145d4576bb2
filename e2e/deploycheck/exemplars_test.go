package deploycheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExemplarsWiring checks the shipped files that carry an exemplar from
// the collector to a trace in Grafana: the collector exposes OpenMetrics,
// Prometheus stores exemplars, and the Grafana Prometheus datasource links
// trace_id to a provisioned Jaeger datasource; the trace backend is Jaeger
// v2 (the jaegertracing/jaeger image, 2.x).
func TestExemplarsWiring(t *testing.T) {
	root := repoRoot(t)
	var col struct {
		Exporters map[string]struct {
			EnableOpenMetrics bool `yaml:"enable_open_metrics"`
		} `yaml:"exporters"`
	}
	readYAML(t, filepath.Join(root, "collector-config.yaml"), &col)
	if !col.Exporters["prometheus"].EnableOpenMetrics {
		t.Error("collector-config.yaml: the prometheus exporter does not set enable_open_metrics: true")
	}

	p := loadCompose(t)
	prom, err := p.GetService("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Errorf("compose prometheus command %v lacks --enable-feature=exemplar-storage", prom.Command)
	}
	jaeger, err := p.GetService("jaeger")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(jaeger.Image, "jaegertracing/jaeger:2.") {
		t.Errorf("compose jaeger image %s, want jaegertracing/jaeger:2.x", jaeger.Image)
	}

	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			Type     string `yaml:"type"`
			URL      string `yaml:"url"`
			JSONData struct {
				Exemplars []struct {
					Name          string `yaml:"name"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(root, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	types := map[string]string{}
	for _, d := range ds.Datasources {
		types[d.UID] = d.Type
	}
	linked := false
	for _, d := range ds.Datasources {
		if d.Type != "prometheus" {
			continue
		}
		for _, e := range d.JSONData.Exemplars {
			if e.Name == "trace_id" && types[e.DatasourceUID] == "jaeger" {
				linked = true
			}
		}
	}
	if !linked {
		t.Error("the Prometheus datasource does not link exemplar trace_id to a Jaeger datasource")
	}
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
