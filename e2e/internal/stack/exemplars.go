package stack

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Exemplar is one exemplar of GET /api/v1/query_exemplars.
type Exemplar struct {
	Series map[string]string // the series' labels
	Labels map[string]string // the exemplar's own (trace_id, span_id)
	Value  float64
}

// Exemplars returns the exemplars of the series promql selects over the
// last window (Prometheus must run with --enable-feature=exemplar-storage).
func (p *Prometheus) Exemplars(ctx context.Context, promql string, window time.Duration) ([]Exemplar, error) {
	now := time.Now()
	q := url.Values{
		"query": {promql},
		"start": {strconv.FormatInt(now.Add(-window).Unix(), 10)},
		"end":   {strconv.FormatInt(now.Unix(), 10)},
	}
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
			Value  string            `json:"value"`
		} `json:"exemplars"`
	}
	if err := p.api(ctx, "/api/v1/query_exemplars?"+q.Encode(), &data); err != nil {
		return nil, fmt.Errorf("exemplars of %q: %w", promql, err)
	}
	var out []Exemplar
	for _, s := range data {
		for _, e := range s.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("exemplars of %q: value %q: %w", promql, e.Value, err)
			}
			out = append(out, Exemplar{Series: s.SeriesLabels, Labels: e.Labels, Value: v})
		}
	}
	return out, nil
}
