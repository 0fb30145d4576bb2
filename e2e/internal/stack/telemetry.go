package stack

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// InternalMetric sums the collector's own metric name (for example
// "otelcol_exporter_sent_spans") over the series whose labels include every
// pair of match, read straight from the collector's telemetry endpoint. found
// is false when no series matches.
func (c *Collector) InternalMetric(ctx context.Context, name string, match map[string]string) (sum float64, found bool, err error) {
	return scrapeSum(ctx, c.TelemetryAddr, name, match)
}

// ExportedMetric is InternalMetric for the prometheus exporter's endpoint:
// the application metrics as Prometheus would scrape them, without waiting
// for a scrape.
func (c *Collector) ExportedMetric(ctx context.Context, name string, match map[string]string) (sum float64, found bool, err error) {
	return scrapeSum(ctx, c.PromAddr, name, match)
}

func scrapeSum(ctx context.Context, addr, name string, match map[string]string) (sum float64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, false, fmt.Errorf("scrape %s: %w", addr, err)
	}
	fam, ok := families[name]
	if !ok {
		return 0, false, nil
	}
	for _, m := range fam.GetMetric() {
		labels := make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matched := true
		for k, v := range match {
			if labels[k] != v {
				matched = false
				break
			}
		}
		if !matched {
			continue
		}
		found = true
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found, nil
}
