package stack_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// databaseLabels identify the database a queue series was sampled from.
var databaseLabels = []string{"server_address", "server_port", "db_namespace"}

// queueMetrics are the series sampled per database, each with the labels
// that tell its series apart across databases (besides the replica's):
// the database's and the queue's name, or the error type.
var queueMetrics = map[string][]string{
	"pgmq_queue_depth":                      append(slices.Clone(databaseLabels), "messaging_destination_name"),
	"pgmq_queue_oldest_message_age_seconds": append(slices.Clone(databaseLabels), "messaging_destination_name"),
	"pgmq_queue_sent_messages_total":        append(slices.Clone(databaseLabels), "messaging_destination_name"),
	"pgmq_sampler_errors_total":             append(slices.Clone(databaseLabels), "error_type"),
}

// TestDashboardQueuePanels reads the shipped dashboard's queue queries:
// series of any sampler are selected by database and queue, never by job
// (a Collector's pgmq receiver reports under the Collector's job, and the
// election moves a database between samplers); every aggregation keeps
// the database apart from another with a same-named queue, taking the max
// across replicas (the sum of failures for sampler errors); and a legend
// that splits by database names it.
func TestDashboardQueuePanels(t *testing.T) {
	path, err := stack.DashboardPath()
	if err != nil {
		t.Fatal(err)
	}
	d, err := stack.LoadDashboard(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every variable becomes a placeholder the matchers can be checked
	// against; the builtins, durations.
	vars := stack.Builtins(15e9)
	byName := map[string]stack.Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = "__" + v.Name + "__"
		byName[v.Name] = v
	}
	for name, want := range map[string]string{
		"database": `label_values({__name__=~"pgmq_queue_depth|pgmq_sampler_errors_total", server_address=~"$server"}, db_namespace)`,
		"queue":    `label_values(pgmq_queue_depth{server_address=~"$server", db_namespace=~"$database"}, messaging_destination_name)`,
	} {
		if got := byName[name].Query; got != want {
			t.Errorf("variable %s: query %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"server", "database"} {
		// With "All", series of a database that only reports failures, or
		// of a sampler without the database labels, stay in.
		if v := byName[name].AllValue; v != ".*" {
			t.Errorf("variable %s: allValue %q, want .*", name, v)
		}
	}

	p := parser.NewParser(parser.Options{})
	checked := 0
	for _, q := range d.Queries() {
		where := q.Panel + "/" + q.RefID
		src, err := stack.Expand(q.Expr, vars)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		expr, err := p.ParseExpr(src)
		if err != nil {
			t.Fatalf("%s: %q: %v", where, src, err)
		}
		var groupings [][]string
		parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			keep, ok := queueMetrics[vs.Name]
			if !ok {
				return nil
			}
			checked++
			checkQueueSelector(t, where, vs)
			agg := innermostAggregation(path)
			if agg == nil {
				t.Errorf("%s: %s is not aggregated across replicas: %s", where, vs.Name, q.Expr)
				return nil
			}
			var wantOp parser.ItemType = parser.MAX
			if vs.Name == "pgmq_sampler_errors_total" {
				wantOp = parser.SUM
			}
			if agg.Op != wantOp {
				t.Errorf("%s: %s aggregated with %s, want %s: %s", where, vs.Name, agg.Op, wantOp, q.Expr)
			}
			if agg.Without {
				t.Errorf("%s: %s aggregated without (...), want by (...): %s", where, vs.Name, q.Expr)
			}
			// No grouping is one total (a stat panel); a grouping keeps
			// databases and queues apart.
			if len(agg.Grouping) > 0 {
				for _, l := range keep {
					if !slices.Contains(agg.Grouping, l) {
						t.Errorf("%s: %s grouped by %v, which merges series of different %s: %s", where, vs.Name, agg.Grouping, l, q.Expr)
					}
				}
				groupings = append(groupings, agg.Grouping)
			}
			return nil
		})
		if q.PanelType == "timeseries" && len(groupings) > 0 {
			for _, l := range []string{"{{db_namespace}}", "{{messaging_destination_name}}", "{{error_type}}"} {
				need := slices.ContainsFunc(groupings, func(g []string) bool { return slices.Contains(g, strings.Trim(l, "{}")) })
				if need && !strings.Contains(q.Legend, l) {
					t.Errorf("%s: legend %q does not name %s", where, q.Legend, l)
				}
			}
			if strings.Contains(q.Legend, "{{db_namespace}}") && strings.Contains(q.Legend, "{{messaging_destination_name}}") &&
				!strings.Contains(q.Legend, "{{db_namespace}}/{{messaging_destination_name}}") {
				t.Errorf("%s: legend %q, want the queue as {{db_namespace}}/{{messaging_destination_name}}", where, q.Legend)
			}
		}
	}
	if checked < 6 {
		t.Errorf("%d queue selectors checked, want the 6 queue panels' at least", checked)
	}
}

// checkQueueSelector fails unless vs selects by the database variables
// (and the queue's, but for sampler errors) and not by job.
func checkQueueSelector(t *testing.T, where string, vs *parser.VectorSelector) {
	t.Helper()
	want := map[string]string{"server_address": "__server__", "db_namespace": "__database__"}
	if vs.Name != "pgmq_sampler_errors_total" {
		want["messaging_destination_name"] = "__queue__"
	}
	for _, m := range vs.LabelMatchers {
		switch {
		case m.Name == "job" || m.Name == "instance" || m.Name == "service_instance_id":
			t.Errorf("%s: %s selects on %s (%s): a Collector's pgmq receiver reports under its own job, and the election moves a database between samplers", where, vs.Name, m.Name, m)
		case want[m.Name] != "":
			if m.Type != labels.MatchRegexp || m.Value != want[m.Name] {
				t.Errorf("%s: %s: matcher %s, want %s=~\"$%s\"", where, vs.Name, m, m.Name, strings.Trim(want[m.Name], "_"))
			}
			delete(want, m.Name)
		}
	}
	for l, v := range want {
		t.Errorf("%s: %s does not select %s=~\"$%s\"", where, vs.Name, l, strings.Trim(v, "_"))
	}
}

// innermostAggregation is the aggregation nearest to the end of path.
func innermostAggregation(path []parser.Node) *parser.AggregateExpr {
	for i := len(path) - 1; i >= 0; i-- {
		if a, ok := path[i].(*parser.AggregateExpr); ok {
			return a
		}
	}
	return nil
}
