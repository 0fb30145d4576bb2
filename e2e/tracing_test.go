package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// tracedQueue is the queue of TestTracesEndToEnd.
const tracedQueue = "e2e_traced"

// TestTracesEndToEnd runs the example orchestrator against the real
// collector, which sends its spans to a real Jaeger v2 (built from Go
// modules) and its metrics to a real Prometheus storing exemplars, and
// asks both:
//
//   - Jaeger has a trace holding "send <queue>" and the "process <queue>"
//     span of the same message as its child, and the message's row in PGMQ
//     carries that send span's context in its headers: the context went
//     through the queue;
//   - Prometheus has an exemplar on messaging_process_duration_seconds
//     whose trace id Jaeger has, with the process span it names.
func TestTracesEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute) // a cold Jaeger build included
	defer cancel()
	stack.RequireTool(t, "prometheus", "PROMETHEUS_BIN", "/usr/bin/prometheus")
	j, err := stack.StartJaeger(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- jaeger log (tail) ---\n%s", j.LogTail(30))
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := j.Stop(stopCtx); err != nil {
			t.Errorf("stop jaeger: %v", err)
		}
	})
	s := stack.Start(t, stack.WithBackend(j.OTLPAddr))
	db := pgmqtest.New(t)
	bin := buildOrchestrator(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200") // export spans within a fraction of a second
	// pool_min_idle_conns makes the pool report db.client.connection.idle.min,
	// which a dashboard query reads.
	dbURL := withQueryParam(t, db.URL, "pool_min_idle_conns", "1")
	worker := startOrchestrator(t, bin, s, dbURL, "e2e-traced",
		"-processors", "2", "-rate", "5", "-work", "100ms", "-queue", tracedQueue, "-fail-rate", "0.2", "-vt", "2s")

	sendName, processName := "send "+tracedQueue, "process "+tracedQueue
	t.Run("one trace from send to process", func(t *testing.T) {
		var send, proc stack.JaegerSpan
		stack.WaitFor(t, stack.DefaultTimeout, "a trace with send and its process span in Jaeger", func(ctx context.Context) error {
			traces, err := j.Traces(ctx, "orchestrator", processName, 50)
			if err != nil {
				return err
			}
			for _, tr := range traces {
				byID := map[string]stack.JaegerSpan{}
				for _, sp := range tr.Spans {
					byID[sp.SpanID] = sp
				}
				for _, sp := range tr.Spans {
					if sp.OperationName != processName {
						continue
					}
					for _, ref := range sp.References {
						parent, ok := byID[ref.SpanID]
						if ref.RefType == "CHILD_OF" && ok && parent.OperationName == sendName &&
							parent.Tag("messaging.message.id") == sp.Tag("messaging.message.id") {
							send, proc = parent, sp
							return nil
						}
					}
				}
			}
			return fmt.Errorf("%d traces with %q, none with its send span as parent", len(traces), processName)
		})
		id := proc.Tag("messaging.message.id")
		t.Logf("Jaeger trace %s: %q (span %s) -> %q (span %s), message %s, system %s",
			send.TraceID, sendName, send.SpanID, processName, proc.SpanID, id, proc.Tag("messaging.system"))
		if proc.Tag("messaging.system") != "pgmq" || send.Tag("span.kind") != "producer" || proc.Tag("span.kind") != "consumer" {
			t.Errorf("tags: send %v, process %v", send.Tags, proc.Tags)
		}
		// The context travelled in the message's PGMQ headers: the row (in
		// the queue or its archive) carries the send span's traceparent.
		var traceparent string
		err := db.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT headers->>'traceparent' FROM (
			SELECT msg_id, headers FROM pgmq.q_%[1]s UNION ALL SELECT msg_id, headers FROM pgmq.a_%[1]s) m
			WHERE msg_id = $1::bigint`, tracedQueue), id).Scan(&traceparent)
		if err != nil {
			t.Fatalf("message %s in PGMQ: %v", id, err)
		}
		if !strings.Contains(traceparent, strings.TrimLeft(send.TraceID, "0")) || !strings.Contains(traceparent, send.SpanID) {
			t.Errorf("message %s headers traceparent %q, want trace %s span %s", id, traceparent, send.TraceID, send.SpanID)
		}
	})

	t.Run("exemplar links to a trace in Jaeger", func(t *testing.T) {
		const promql = `messaging_process_duration_seconds_bucket{messaging_destination_name="` + tracedQueue + `"}`
		var found stack.Exemplar
		var trace stack.JaegerTrace
		stack.WaitFor(t, stack.DefaultTimeout, "an exemplar whose trace Jaeger has", func(ctx context.Context) error {
			exemplars, err := s.Prometheus.Exemplars(ctx, promql, 15*time.Minute)
			if err != nil {
				return err
			}
			var last error = fmt.Errorf("no exemplars of %s yet", promql)
			for _, e := range exemplars {
				id := e.Labels["trace_id"]
				if id == "" {
					continue
				}
				tr, err := j.Trace(ctx, id)
				if err != nil {
					last = err
					continue
				}
				for _, sp := range tr.Spans {
					if sp.SpanID == e.Labels["span_id"] && sp.OperationName == processName {
						found, trace = e, tr
						return nil
					}
				}
				last = fmt.Errorf("trace %s has no %q span %s", id, processName, e.Labels["span_id"])
			}
			return last
		})
		t.Logf("exemplar %v (value %vs, bucket le=%s) -> Jaeger trace %s with %d spans",
			found.Labels, found.Value, found.Series["le"], trace.TraceID, len(trace.Spans))
	})

	t.Run("dashboard", func(t *testing.T) {
		// Every query returns data, the messaging panels included: with
		// -fail-rate 0.2 and -vt 2s, failures and redeliveries happen.
		path, err := stack.DashboardPath()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.CheckDashboard(t, path) {
			if r.Panel == "Processing duration p50 / p95 / p99" || r.Panel == "Redeliveries" || r.Panel == "Processing failures" {
				t.Logf("dashboard %q/%s: %d series, first %v", r.Panel, r.RefID, len(r.Samples), firstValue(r.Samples))
			}
		}
	})

	if code := worker.stop(t); code != 0 {
		t.Errorf("orchestrator exited %d after SIGTERM, want 0\n%s", code, worker.output())
	}
}
