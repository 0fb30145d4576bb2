package stack_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/e2e/internal/fakeapp"
	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

func TestMain(m *testing.M) { stack.Main(m) }

// The two fake replicas of TestPipeline. They report the same queue of the
// same database with slightly different depths (as two samplers a moment
// apart would), and their own pools and processors.
var (
	replicaA = fakeapp.Replica{
		InstanceID: "replica-a",
		Processors: map[string]int64{"worker": 3, "scheduler": 1},
		Pool:       "main", Used: 4, Idle: 6, Max: 10, IdleMin: 2, AcquireWaits: 7,
		ServerAddress: "pg.internal", ServerPort: 5432, Database: "app",
		Queue: "jobs", Visible: 12, Invisible: 3, OldestAgeSeconds: 42.5, Sent: 100,
		SamplerErrors: map[string]int64{"timeout": 2},
		// Two acquires found an idle connection, one waited.
		AcquireTimes: []float64{0.000002, 0.000003, 0.2},
	}
	replicaB = fakeapp.Replica{
		InstanceID: "replica-b",
		Processors: map[string]int64{"worker": 2},
		Pool:       "main", Used: 9, Idle: 1, Max: 10, IdleMin: 2, AcquireWaits: 30,
		ServerAddress: "pg.internal", ServerPort: 5432, Database: "app",
		Queue: "jobs", Visible: 11, Invisible: 5, OldestAgeSeconds: 40, Sent: 99,
	}
)

// startReplica runs a fake replica until the test ends.
func startReplica(t *testing.T, r fakeapp.Replica) {
	t.Helper()
	shutdown, err := fakeapp.Start(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shut down replica %s: %v", r.InstanceID, err)
		}
	})
}

// TestPipeline sends real OTLP metrics through the shipped collector
// configuration into a real Prometheus, and checks the Prometheus names,
// labels and values, the dashboard queries and the alert rules. The trace
// backend is a dead port all along, and spans are sent to it first: metrics
// must flow regardless.
func TestPipeline(t *testing.T) {
	s := stack.Start(t)
	s.SetOTLPEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "orchestrator")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")

	sendSpanToDeadBackend(t, s)
	startReplica(t, replicaA)
	startReplica(t, replicaB)

	t.Run("names", func(t *testing.T) {
		want := []string{
			"db_client_connection_count",
			"db_client_connection_idle_min",
			"db_client_connection_max",
			"db_client_connection_wait_time_seconds_bucket",
			"db_client_connection_wait_time_seconds_count",
			"db_client_connection_wait_time_seconds_sum",
			"orchestration_processor_active",
			"pgmq_queue_depth",
			"pgmq_queue_oldest_message_age_seconds",
			"pgmq_queue_sent_messages_total",
			"pgmq_sampler_errors_total",
			"pgxpool_acquire_waits_total",
			"pgxpool_connection_utilization_ratio",
			"target_info",
		}
		// The rules' own output: the recording rule (names with a colon,
		// per database and queue, without job) and ALERTS, which keep
		// job="orchestrator" (replica B's pool at 0.9 makes
		// PGXPoolUtilizationHigh pending at once). Wait for both, the order
		// a slow machine meets, and count only what was scraped.
		s.WaitForSamples(t, `pgmq:queue_depth:max{db_namespace="app"}`, 1)
		s.WaitForSamples(t, `ALERTS{job="orchestrator",alertname="PGXPoolUtilizationHigh"}`, 1)
		var got []string
		stack.WaitFor(t, stack.DefaultTimeout, "every metric of both replicas", func(ctx context.Context) error {
			samples, err := s.Prometheus.Query(ctx, `count by (__name__) ({job="orchestrator", __name__!~"ALERTS|ALERTS_FOR_STATE|.*:.*"})`)
			if err != nil {
				return err
			}
			got = got[:0]
			for _, x := range samples {
				got = append(got, x.Name())
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("metric names %v, want %v", got, want)
			}
			// Every series of replica B, the last one started, has arrived.
			b, err := s.Prometheus.Query(ctx, `count({instance="replica-b"})`)
			if err != nil || len(b) == 0 || b[0].Value < 11 {
				return fmt.Errorf("replica-b series: %v %v", b, err)
			}
			return nil
		})
	})

	t.Run("series", func(t *testing.T) {
		// Labels every series of replica A carries besides its own attributes.
		common := map[string]string{
			"job":                 "orchestrator", // service.name
			"instance":            "replica-a",    // service.instance.id
			"service_instance_id": "replica-a",    // resource_constant_labels
			"otel_scope_name":     fakeapp.ScopeName,
		}
		with := func(kv ...string) map[string]string {
			m := maps.Clone(common)
			for i := 0; i < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		pool := []string{"db_client_connection_pool_name", "main"}
		database := []string{"server_address", "pg.internal", "server_port", "5432", "db_namespace", "app"}
		queue := append([]string{"messaging_system", "pgmq", "messaging_destination_name", "jobs"}, database...)
		depth := append(queue[:len(queue):len(queue)], "pgmq_depth_method", "count")
		for _, tc := range []struct {
			name   string
			labels map[string]string // without __name__
			value  float64
		}{
			{"orchestration_processor_active", with("orchestration_processor_kind", "worker"), 3},
			{"orchestration_processor_active", with("orchestration_processor_kind", "scheduler"), 1},
			{"db_client_connection_count", with(append(pool, "db_client_connection_state", "used")...), 4},
			{"db_client_connection_count", with(append(pool, "db_client_connection_state", "idle")...), 6},
			{"db_client_connection_max", with(pool...), 10},
			{"db_client_connection_idle_min", with(pool...), 2},
			{"pgxpool_connection_utilization_ratio", with(pool...), 0.4},
			{"pgxpool_acquire_waits_total", with(pool...), 7},
			{"db_client_connection_wait_time_seconds_count", with(pool...), 3},
			{"db_client_connection_wait_time_seconds_bucket", with(append(pool, "le", "1e-05")...), 2},
			{"db_client_connection_wait_time_seconds_bucket", with(append(pool, "le", "0.5")...), 3},
			{"pgmq_queue_depth", with(append(depth, "pgmq_message_state", "visible")...), 12},
			{"pgmq_queue_depth", with(append(depth, "pgmq_message_state", "invisible")...), 3},
			{"pgmq_queue_oldest_message_age_seconds", with(queue...), 42.5},
			{"pgmq_queue_sent_messages_total", with(queue...), 100},
			{"pgmq_sampler_errors_total", with(append(database, "error_type", "timeout")...), 2},
		} {
			sel := tc.name + selector(tc.labels)
			got := s.WaitForSamples(t, sel, 1)
			if len(got) != 1 {
				t.Errorf("%s: %d series, want 1: %v", sel, len(got), got)
				continue
			}
			want := maps.Clone(tc.labels)
			want["__name__"] = tc.name
			if !maps.Equal(got[0].Labels, want) {
				t.Errorf("%s: labels %v, want exactly %v", tc.name, got[0].Labels, want)
			}
			if got[0].Value != tc.value {
				t.Errorf("%s: value %v, want %v", sel, got[0].Value, tc.value)
			}
		}
	})

	t.Run("replicas", func(t *testing.T) {
		// Replicas stay apart: one utilization series each.
		got := s.QueryInstant(t, `pgxpool_connection_utilization_ratio{db_client_connection_pool_name="main"}`)
		byReplica := map[string]float64{}
		for _, x := range got {
			byReplica[x.Labels["service_instance_id"]] = x.Value
		}
		if want := map[string]float64{"replica-a": 0.4, "replica-b": 0.9}; !maps.Equal(byReplica, want) {
			t.Errorf("utilization by replica %v, want %v", byReplica, want)
		}
		// Queue-level series aggregate with max across replicas.
		got = s.QueryInstant(t, `max by (server_address, server_port, db_namespace, messaging_destination_name, pgmq_message_state) (pgmq_queue_depth)`)
		depth := map[string]float64{}
		for _, x := range got {
			l := x.Labels
			depth[l["server_address"]+":"+l["server_port"]+"/"+l["db_namespace"]+"/"+l["messaging_destination_name"]+"/"+l["pgmq_message_state"]] = x.Value
		}
		if want := map[string]float64{"pg.internal:5432/app/jobs/visible": 12, "pg.internal:5432/app/jobs/invisible": 5}; !maps.Equal(depth, want) {
			t.Errorf("max queue depth %v, want %v", depth, want)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		path, err := stack.DashboardPath()
		if err != nil {
			t.Fatal(err)
		}
		// The fake replicas send no messages: the messaging panels without
		// a 0 fallback have nothing to show here (TestOrchestratorEndToEnd
		// and TestTracesEndToEnd check them with a real orchestrator).
		results := s.CheckDashboard(t, path, "Processing duration p50 / p95 / p99", "Wait time in queue p50 / p95",
			"Throughput: sent / received / processed", "Processing failures/B")
		// A few panels whose value follows from the replicas' fixed values.
		for panel, want := range map[string]float64{
			"Active processors": 3 + 1 + 2,
			"Visible backlog":   12,
			"Oldest message":    42.5,
			"Busiest pool":      0.9,
		} {
			i := slices.IndexFunc(results, func(r stack.DashboardResult) bool { return r.Panel == panel })
			if i < 0 {
				t.Errorf("no panel %q", panel)
				continue
			}
			if r := results[i]; len(r.Samples) != 1 || r.Samples[0].Value != want {
				t.Errorf("panel %q (%s) = %v, want one sample %v", panel, r.Expanded, r.Samples, want)
			}
		}
		t.Logf("%d dashboard queries returned data", len(results))
	})

	t.Run("rules", func(t *testing.T) {
		rules := s.WaitForRules(t)
		var names []string
		for _, r := range rules {
			names = append(names, r.Name)
			if r.Health != "ok" {
				t.Errorf("rule %s (%s): health %q: %s", r.Name, r.Query, r.Health, r.LastError)
			}
		}
		sort.Strings(names)
		want := []string{
			"OTelCollectorDown", "PGMQBacklogWithoutProcessors", "PGMQMessageWaitTooLong", "PGMQNoQueueSampler",
			"PGMQOldestMessageTooOld", "PGMQProcessingFailureRatioHigh", "PGMQQueueDepthGrowing", "PGMQSamplerErrors",
			"PGMQTelemetryAbsent",
			"PGXPoolAcquireSlow", "PGXPoolUtilizationCritical", "PGXPoolUtilizationHigh",
			"pgmq:database_queues:count", "pgmq:queue_depth:max",
		}
		if !slices.Equal(names, want) {
			t.Errorf("rules %v, want %v", names, want)
		}
		// Real data drives the rules: replica B's pool (0.9) is above the
		// warning threshold, so that alert becomes pending; nothing else is.
		stack.WaitFor(t, stack.DefaultTimeout, "PGXPoolUtilizationHigh pending", func(ctx context.Context) error {
			rules, err := s.Prometheus.Rules(ctx)
			if err != nil {
				return err
			}
			for _, r := range rules {
				want := "inactive"
				if r.Name == "PGXPoolUtilizationHigh" {
					want = "pending"
				}
				if r.Type == "alerting" && r.State != want {
					return fmt.Errorf("%s is %s, want %s", r.Name, r.State, want)
				}
			}
			return nil
		})
		// The recording rule sums the states per replica, then takes the max
		// across replicas (A: 12 + 3 = 15, B: 11 + 5 = 16). Polled: the rule
		// may have last run before both replicas reported.
		stack.WaitFor(t, stack.DefaultTimeout, "pgmq:queue_depth:max", func(ctx context.Context) error {
			rec, err := s.Prometheus.Query(ctx, `pgmq:queue_depth:max{server_address="pg.internal",server_port="5432",db_namespace="app",messaging_destination_name="jobs"}`)
			if err != nil {
				return err
			}
			if len(rec) != 1 || rec[0].Value != 16 {
				return fmt.Errorf("got %v, want one series 16", rec)
			}
			return nil
		})
	})

	t.Run("dead trace backend", func(t *testing.T) {
		// Meanwhile the span sent before the metrics is still queued for
		// retry, or has failed: never delivered, never in the way.
		backend := map[string]string{"exporter": "otlp_grpc/backend"}
		stack.WaitFor(t, stack.DefaultTimeout, "the span to be queued or failed", func(ctx context.Context) error {
			var total float64
			for _, name := range []string{"otelcol_exporter_queue_size", "otelcol_exporter_send_failed_spans"} {
				n, _, err := s.Collector.InternalMetric(ctx, name, backend)
				if err != nil {
					return err
				}
				total += n
			}
			if total < 1 {
				return fmt.Errorf("no span queued or failed")
			}
			return nil
		})
		sent, _, err := s.Collector.InternalMetric(context.Background(), "otelcol_exporter_sent_spans", backend)
		if err != nil {
			t.Fatal(err)
		}
		if sent != 0 {
			t.Errorf("%v span(s) sent to a backend nobody listens on", sent)
		}
	})
}

// sendSpanToDeadBackend exports one span through the collector, whose trace
// backend is a port nobody listens on, and waits until the collector has
// accepted it: from then on its trace exporter retries in the background.
func sendSpanToDeadBackend(t *testing.T, s *stack.Stack) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx) // configured by OTEL_EXPORTER_OTLP_*
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	_, span := tp.Tracer("github.com/pgmqotel/pgmqotel/e2e").Start(ctx, "enqueue")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	stack.WaitFor(t, stack.DefaultTimeout, "the collector to accept the span", func(ctx context.Context) error {
		n, _, err := s.Collector.InternalMetric(ctx, "otelcol_receiver_accepted_spans", nil)
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("%v spans accepted", n)
		}
		return nil
	})
}

// selector renders labels as a PromQL selector with exact matchers.
func selector(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	out := "{"
	for i, k := range keys {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf("%s=%q", k, labels[k])
	}
	return out + "}"
}
