package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Dashboard is the part of a Grafana dashboard JSON the harness checks.
type Dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Panels     []Panel
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel; rows carry their collapsed panels in Panels.
type Panel struct {
	Title   string   `json:"title"`
	Type    string   `json:"type"`
	Targets []Target `json:"targets"`
	Panels  []Panel  `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Hide         bool   `json:"hide"`
}

// Variable is a dashboard template variable. Query is the label_values(...)
// query of a "query" variable; AllValue, when set, is its value with "All"
// selected instead of the alternation of its values.
type Variable struct {
	Name     string
	Type     string
	Query    string
	AllValue string
}

// UnmarshalJSON accepts both forms Grafana writes a variable query in: a
// string, or an object with a "query" field.
func (v *Variable) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name     string          `json:"name"`
		Type     string          `json:"type"`
		Query    json.RawMessage `json:"query"`
		AllValue string          `json:"allValue"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	v.Name, v.Type, v.AllValue = raw.Name, raw.Type, raw.AllValue
	if len(raw.Query) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw.Query, &v.Query); err == nil {
		return nil
	}
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw.Query, &obj); err != nil {
		return fmt.Errorf("variable %s: query: %w", v.Name, err)
	}
	v.Query = obj.Query
	return nil
}

// PanelQuery is one visible query of a panel.
type PanelQuery struct {
	Panel     string // panel title
	PanelType string // "timeseries", "stat", ...
	RefID     string
	Expr      string // as written in the dashboard, with $variables
	Legend    string // the legend format, with {{label}} references
}

// DashboardPath returns the path of the shipped dashboard
// (deploy/grafana/dashboards/pgmq-orchestrator.json).
func DashboardPath() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "grafana", "dashboards", "pgmq-orchestrator.json"), nil
}

// LoadDashboard parses a dashboard JSON file.
func LoadDashboard(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load dashboard: %w", err)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("load dashboard %s: %w", path, err)
	}
	return &d, nil
}

// Queries lists every visible query of every panel, rows included.
func (d *Dashboard) Queries() []PanelQuery {
	var out []PanelQuery
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if !t.Hide && t.Expr != "" {
					out = append(out, PanelQuery{Panel: p.Title, PanelType: p.Type, RefID: t.RefID, Expr: t.Expr, Legend: t.LegendFormat})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// varRef matches the variable syntaxes Grafana expands: ${name},
// ${name:format}, $name and [[name]].
var varRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// Expand substitutes variables into expr. It fails on a variable vars does
// not define, so a typo in the dashboard cannot pass unnoticed.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("expand %q: undefined variable(s) %v", expr, missing)
	}
	return out, nil
}

var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*?)\s*,\s*)?(\w+)\s*\)\s*$`)

// ResolveVariables computes the value of every template variable the way
// Grafana does with "All" selected: a query variable becomes its AllValue
// when it has one, otherwise the regex alternation of its values, (a|b),
// each regex-escaped and with backslashes doubled for the PromQL string
// literal. A variable named in selected takes those of its values instead,
// as when picked in Grafana; each must be one of its values. Builtins such
// as $__rate_interval must be in builtins; datasource variables are left
// out (queries do not reference them). A query variable without values is
// an error: every panel using it would be empty.
func (d *Dashboard) ResolveVariables(ctx context.Context, p *Prometheus, builtins map[string]string, selected map[string][]string) (map[string]string, error) {
	vars := make(map[string]string, len(builtins)+len(d.Templating.List))
	for k, v := range builtins {
		vars[k] = v
	}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			continue
		case "query":
		default:
			return nil, fmt.Errorf("variable %s: unsupported type %q", v.Name, v.Type)
		}
		q, err := Expand(v.Query, vars) // later variables may use earlier ones
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		m := labelValuesQuery.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("variable %s: only label_values(...) queries are supported, got %q", v.Name, q)
		}
		selector, label := m[1], m[2]
		if selector == "" {
			selector = `{` + label + `!=""}`
		}
		values, err := p.LabelValues(ctx, selector, label)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("variable %s: %s has no values", v.Name, q)
		}
		pick, ok := selected[v.Name]
		if !ok && v.AllValue != "" {
			vars[v.Name] = v.AllValue
			continue
		}
		if ok {
			for _, s := range pick {
				if !slices.Contains(values, s) {
					return nil, fmt.Errorf("variable %s: %q is not one of its values %v", v.Name, s, values)
				}
			}
			values = pick
		}
		quoted := make([]string, len(values))
		for i, s := range values {
			quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`)
		}
		vars[v.Name] = "(" + strings.Join(quoted, "|") + ")"
	}
	return vars, nil
}

// Builtins returns values for Grafana's interval variables matching a
// Prometheus that scrapes every scrape: $__interval is one scrape and
// $__rate_interval four, Grafana's lower bound.
func Builtins(scrape time.Duration) map[string]string {
	return map[string]string{
		"__interval":      scrape.String(),
		"__rate_interval": (4 * scrape).String(),
		"__range":         "5m",
	}
}

// DashboardResult is a dashboard query as run by CheckDashboard.
type DashboardResult struct {
	PanelQuery
	Expanded string // with variables substituted
	Samples  []Sample
}

// CheckDashboard resolves the dashboard's variables against the stack's
// Prometheus and waits until every panel query returns at least one sample.
// Queries named in allowEmpty, by panel title ("Oldest message age": all its
// queries) or title and refId ("Pool connections: used / idle / max/C"),
// need only run without error, for example an age panel while every queue
// is empty. It returns the last results.
func (s *Stack) CheckDashboard(t testing.TB, path string, allowEmpty ...string) []DashboardResult {
	t.Helper()
	return s.CheckDashboardSelected(t, path, nil, allowEmpty...)
}

// CheckDashboardSelected is CheckDashboard with the variables named in
// selected set to those of their values (see ResolveVariables), the others
// at "All".
func (s *Stack) CheckDashboardSelected(t testing.TB, path string, selected map[string][]string, allowEmpty ...string) []DashboardResult {
	t.Helper()
	d, err := LoadDashboard(path)
	if err != nil {
		t.Fatal(err)
	}
	queries := d.Queries()
	if len(queries) == 0 {
		t.Fatalf("dashboard %s has no queries", path)
	}
	var vars map[string]string
	WaitFor(t, DefaultTimeout, "dashboard variables to have values", func(ctx context.Context) error {
		vars, err = d.ResolveVariables(ctx, s.Prometheus, Builtins(s.interval), selected)
		return err
	})
	empty := make(map[string]bool, len(allowEmpty))
	for _, p := range allowEmpty {
		empty[p] = true
	}
	results := make([]DashboardResult, len(queries))
	for i, q := range queries {
		expanded, err := Expand(q.Expr, vars)
		if err != nil {
			t.Fatalf("panel %q %s: %v", q.Panel, q.RefID, err)
		}
		results[i] = DashboardResult{PanelQuery: q, Expanded: expanded}
		WaitFor(t, DefaultTimeout, fmt.Sprintf("panel %q query %s (%s) to return data", q.Panel, q.RefID, expanded), func(ctx context.Context) error {
			got, err := s.Prometheus.Query(ctx, expanded)
			if err != nil {
				return err
			}
			results[i].Samples = got
			if len(got) == 0 && !empty[q.Panel] && !empty[q.Panel+"/"+q.RefID] {
				return fmt.Errorf("no data")
			}
			return nil
		})
	}
	return results
}
