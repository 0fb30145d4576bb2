package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// PrometheusOptions configures StartPrometheus.
type PrometheusOptions struct {
	// Dir holds the generated config, the TSDB and the log. Required.
	Dir string
	// Collector is the collector to scrape. Required.
	Collector *Collector
	// Interval is the scrape and rule evaluation interval; 1s when zero.
	Interval time.Duration
	// Binary is the prometheus executable; $PROMETHEUS_BIN or
	// /usr/bin/prometheus when empty.
	Binary string
	// ListenAddr fixes the web listen address; empty means a free
	// 127.0.0.1 port.
	ListenAddr string
}

// Prometheus is a running Prometheus started by StartPrometheus.
type Prometheus struct {
	URL        string // http://127.0.0.1:<port>
	ConfigPath string // the generated configuration
	LogPath    string
	proc       *process
}

// shippedTargets maps the compose targets of deploy/prometheus/prometheus.yml
// to the collector address that replaces them.
func shippedTargets(c *Collector) map[string]string {
	return map[string]string{
		"otel-collector:8889": c.PromAddr,
		"otel-collector:8888": c.TelemetryAddr,
	}
}

// StartPrometheus writes a configuration derived from the shipped
// deploy/prometheus/prometheus.yml (same jobs and scrape options, local
// targets, the shipped alert rules) and starts Prometheus on a free port,
// waiting until it is ready.
func StartPrometheus(ctx context.Context, opts PrometheusOptions) (*Prometheus, error) {
	if opts.Dir == "" || opts.Collector == nil {
		return nil, errors.New("start prometheus: PrometheusOptions.Dir and Collector are required")
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	bin := opts.Binary
	if bin == "" {
		bin = os.Getenv("PROMETHEUS_BIN")
	}
	if bin == "" {
		bin = "/usr/bin/prometheus"
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cfg, err := LocalPrometheusConfig(
		filepath.Join(root, "deploy", "prometheus", "prometheus.yml"),
		filepath.Join(root, "deploy", "prometheus", "alerts.yml"),
		shippedTargets(opts.Collector), opts.Interval)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(opts.Dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	var lastErr error
	for attempt := range startAttempts {
		addr := opts.ListenAddr
		if addr == "" {
			if addr, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		p := &Prometheus{
			URL:        "http://" + addr,
			ConfigPath: cfgPath,
			LogPath:    filepath.Join(opts.Dir, fmt.Sprintf("prometheus-%d.log", attempt)),
		}
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(opts.Dir, fmt.Sprintf("tsdb-%d", attempt)),
			"--web.listen-address=" + addr,
			// As in docker-compose.yml: keep the collector's exemplars.
			"--enable-feature=exemplar-storage",
		}
		if p.proc, err = startProcess("prometheus", bin, args, nil, p.LogPath); err != nil {
			return nil, err
		}
		if lastErr = poll(ctx, "wait for prometheus", p.proc, func(ctx context.Context) error {
			return httpOK(ctx, p.URL+"/-/ready")
		}); lastErr == nil {
			return p, nil
		}
		_ = p.Stop(context.Background())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// LocalPrometheusConfig rewrites the shipped configuration for a local run:
// targets mapped through targets (compose host:port -> local host:port),
// rule_files replaced by rules, scrape and evaluation interval set to
// interval. Unknown targets are an error, so the harness never silently
// drops a job that the shipped file gains.
func LocalPrometheusConfig(shipped, rules string, targets map[string]string, interval time.Duration) ([]byte, error) {
	raw, err := os.ReadFile(shipped)
	if err != nil {
		return nil, fmt.Errorf("prometheus config: %w", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("prometheus config %s: %w", shipped, err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["scrape_interval"] = interval.String()
	global["evaluation_interval"] = interval.String()
	cfg["rule_files"] = []any{rules}
	jobs, _ := cfg["scrape_configs"].([]any)
	if len(jobs) == 0 {
		return nil, fmt.Errorf("prometheus config %s: no scrape_configs", shipped)
	}
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		statics, _ := job["static_configs"].([]any)
		for _, s := range statics {
			static, _ := s.(map[string]any)
			list, _ := static["targets"].([]any)
			for i, tgt := range list {
				local, ok := targets[fmt.Sprint(tgt)]
				if !ok {
					return nil, fmt.Errorf("prometheus config %s: job %v: no local address for target %v", shipped, job["job_name"], tgt)
				}
				list[i] = local
			}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("prometheus config: %w", err)
	}
	return out, nil
}

// Stop shuts Prometheus down gracefully, killing it if ctx ends first.
func (p *Prometheus) Stop(ctx context.Context) error { return p.proc.stop(ctx) }

// LogTail returns the last n lines of the Prometheus log.
func (p *Prometheus) LogTail(n int) string { return p.proc.logTail(n) }

// Sample is one element of an instant query result.
type Sample struct {
	Labels map[string]string // includes __name__ when the series has one
	Value  float64
}

// Name returns the metric name of the sample ("" for computed series).
func (s Sample) Name() string { return s.Labels["__name__"] }

// Query runs an instant query at the current time. A scalar result comes
// back as one sample without labels.
func (p *Prometheus) Query(ctx context.Context, promql string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(ctx, "/api/v1/query?"+url.Values{"query": {promql}}.Encode(), &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, v := range vec {
			f, err := sampleValue(v.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", promql, err)
			}
			out = append(out, Sample{Labels: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		f, err := sampleValue(v)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		return []Sample{{Labels: map[string]string{}, Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: unsupported result type %q", promql, data.ResultType)
	}
}

func sampleValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v[1])
	}
	return strconv.ParseFloat(s, 64)
}

// Rule is one rule as reported by GET /api/v1/rules.
type Rule struct {
	Group     string
	Name      string `json:"name"`
	Query     string `json:"query"`
	Type      string `json:"type"`   // "alerting" or "recording"
	Health    string `json:"health"` // "ok", "err" or "unknown" (not evaluated yet)
	LastError string `json:"lastError"`
	State     string `json:"state"` // alerting rules: inactive, pending or firing
	// LastEvaluation is when the rule was last evaluated (zero before).
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// Rules lists every loaded rule.
func (p *Prometheus) Rules(ctx context.Context) ([]Rule, error) {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api(ctx, "/api/v1/rules", &data); err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var out []Rule
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			r.Group = g.Name
			out = append(out, r)
		}
	}
	return out, nil
}

// LabelValues returns the values of label on series matching selector, the
// way Grafana's label_values(selector, label) does.
func (p *Prometheus) LabelValues(ctx context.Context, selector, label string) ([]string, error) {
	var data []string
	q := url.Values{"match[]": {selector}}.Encode()
	if err := p.api(ctx, "/api/v1/label/"+url.PathEscape(label)+"/values?"+q, &data); err != nil {
		return nil, fmt.Errorf("label values %s of %s: %w", label, selector, err)
	}
	return data, nil
}

// api GETs a Prometheus HTTP API path and decodes the data field into out.
func (p *Prometheus) api(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}
