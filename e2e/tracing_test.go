package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/otelpgmq"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// tracedQueue is the queue of TestTracesEndToEnd.
const tracedQueue = "e2e_traced"

// TestTracesEndToEnd runs the example orchestrator against the real
// collector, which sends its spans to a real Jaeger v2 (built from Go
// modules) and its metrics to a real Prometheus storing exemplars, while
// this test sends a batch of its own to the same queue, and asks both:
//
//   - Jaeger has a trace holding the PRODUCER "send <queue>" and the
//     CONSUMER "process <queue>" span of the same message as its child
//     (the demo uses WithProcessParent), linked to it as well, with the
//     CLIENT "archive <queue>" inside it; the message's row in PGMQ carries
//     that send span's context in its headers: the context went through
//     the queue;
//   - the batch is a CLIENT "send_batch <queue>" span linked to one
//     PRODUCER "create <queue>" span per message, each in a trace of its
//     own with its message's process span as its child;
//   - the CLIENT "read <queue>" spans link to the creation contexts of the
//     messages they fetched;
//   - every span seen has the name and kind docs/tracing.md's table of spans gives;
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
	batchIDs := sendTracedBatch(t, s, db, 3)

	name := func(op string) string { return op + " " + tracedQueue }
	var seen []stack.JaegerSpan // every span the subtests looked at

	t.Run("one trace from send to process", func(t *testing.T) {
		var send, proc, archive stack.JaegerSpan
		stack.WaitFor(t, stack.DefaultTimeout, "a trace with send, its process span and the archive in Jaeger", func(ctx context.Context) error {
			traces, err := j.Traces(ctx, "orchestrator", name("archive"), 50)
			if err != nil {
				return err
			}
			for _, tr := range traces {
				byID := spansByID(tr)
				for _, sp := range tr.Spans {
					p, ok := parentOf(sp, byID)
					if sp.OperationName != name("archive") || !ok || p.OperationName != name("process") {
						continue
					}
					if sd, ok := parentOf(p, byID); ok && sd.OperationName == name("send") &&
						sd.Tag("messaging.message.id") == p.Tag("messaging.message.id") {
						send, proc, archive = sd, p, sp
						seen = append(seen, tr.Spans...)
						return nil
					}
				}
			}
			return fmt.Errorf("%d traces with %q, none with process and send above it", len(traces), name("archive"))
		})
		id := proc.Tag("messaging.message.id")
		t.Logf("Jaeger trace %s: %q (span %s) -> %q (span %s) -> %q, message %s, system %s",
			send.TraceID, name("send"), send.SpanID, name("process"), proc.SpanID, name("archive"), id, proc.Tag("messaging.system"))
		if proc.Tag("messaging.system") != "pgmq" || send.Tag("span.kind") != "producer" || proc.Tag("span.kind") != "consumer" ||
			archive.Tag("span.kind") != "client" {
			t.Errorf("tags: send %v, process %v, archive %v", send.Tags, proc.Tags, archive.Tags)
		}
		if !follows(proc, send.SpanID) {
			t.Errorf("process span references %v, want a link (FOLLOWS_FROM) to the send span %s as well", proc.References, send.SpanID)
		}
		for _, sp := range []stack.JaegerSpan{send, proc, archive} {
			if sp.Tag("server.address") == "" || sp.Tag("server.port") == "" {
				t.Errorf("%s: no server.address/server.port in %v", sp.OperationName, sp.Tags)
			}
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

	t.Run("batch: send_batch links to a create span per message, each the parent of its process span", func(t *testing.T) {
		var batch stack.JaegerSpan
		stack.WaitFor(t, stack.DefaultTimeout, "the batch's span, and a process span under each of its create spans", func(ctx context.Context) error {
			traces, err := j.Traces(ctx, batchService, name("send_batch"), 5)
			if err != nil {
				return err
			}
			if len(traces) != 1 || len(traces[0].Spans) != 1 {
				return fmt.Errorf("%d traces with %q, want 1 holding that span alone", len(traces), name("send_batch"))
			}
			batch = traces[0].Spans[0]
			if n := len(links(batch)); n != len(batchIDs) {
				return fmt.Errorf("%q links to %d spans, want %d", name("send_batch"), n, len(batchIDs))
			}
			var found []stack.JaegerSpan
			for _, r := range batch.References {
				tr, err := j.Trace(ctx, r.TraceID)
				if err != nil {
					return err
				}
				byID := spansByID(tr)
				c, ok := byID[r.SpanID]
				if !ok || c.OperationName != name("create") {
					return fmt.Errorf("trace %s has no %q span %s", r.TraceID, name("create"), r.SpanID)
				}
				for _, sp := range tr.Spans {
					if p, ok := parentOf(sp, byID); ok && sp.OperationName == name("process") && p.SpanID == c.SpanID {
						found = append(found, tr.Spans...)
						break
					}
				}
			}
			creates := 0
			for _, sp := range found {
				if sp.OperationName == name("create") {
					creates++
				}
			}
			if creates != len(batchIDs) {
				return fmt.Errorf("%d of %d create spans have their process span under them", creates, len(batchIDs))
			}
			seen = append(append(seen, batch), found...)
			return nil
		})
		if batch.Tag("span.kind") != "client" || batch.Tag("messaging.batch.message_count") != fmt.Sprint(len(batchIDs)) {
			t.Errorf("send_batch tags %v, want a client span counting %d messages", batch.Tags, len(batchIDs))
		}
		for _, sp := range seen {
			if sp.OperationName == name("create") && (sp.Tag("span.kind") != "producer" || parentID(sp) != "") {
				t.Errorf("create span %s: kind %s, references %v; want a producer span without parent", sp.SpanID, sp.Tag("span.kind"), sp.References)
			}
		}
	})

	t.Run("reads link to the creation contexts", func(t *testing.T) {
		stack.WaitFor(t, stack.DefaultTimeout, "a read span linked to a message's creation context", func(ctx context.Context) error {
			traces, err := j.Traces(ctx, "orchestrator", name("read"), 50)
			if err != nil {
				return err
			}
			for _, tr := range traces {
				for _, sp := range tr.Spans {
					if sp.OperationName == name("read") && sp.Tag("span.kind") == "client" && len(links(sp)) > 0 {
						seen = append(seen, sp)
						return nil
					}
				}
			}
			return fmt.Errorf("%d traces with %q, no read span with a link", len(traces), name("read"))
		})
	})

	t.Run("docs/tracing.md's table of spans", func(t *testing.T) {
		table := readmeSpanKinds(t)
		got := map[string]bool{}
		for _, sp := range seen {
			op, queue, _ := strings.Cut(sp.OperationName, " ")
			if queue != tracedQueue {
				continue
			}
			key := op + " <queue> " + strings.ToUpper(sp.Tag("span.kind"))
			got[key] = true
			if !table[key] {
				t.Errorf("span %q of kind %s is not in docs/tracing.md's table of spans %v", sp.OperationName, sp.Tag("span.kind"), table)
			}
		}
		keys := slices.Sorted(maps.Keys(got))
		t.Logf("spans seen in Jaeger: %q", keys)
		for _, op := range []string{"send", "send_batch", "create", "read", "process", "archive"} {
			if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, op+" ") }) {
				t.Errorf("no %q span seen in Jaeger", op+" "+tracedQueue)
			}
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
					if sp.SpanID == e.Labels["span_id"] && sp.OperationName == name("process") {
						found, trace = e, tr
						return nil
					}
				}
				last = fmt.Errorf("trace %s has no %q span %s", id, name("process"), e.Labels["span_id"])
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

// batchService is the service name of the batch TestTracesEndToEnd sends.
const batchService = "e2e-batch-producer"

// sendTracedBatch sends n messages to tracedQueue in one SendBatch traced
// by otelpgmq, exporting its spans over OTLP to the stack's collector as
// service batchService, and returns their ids.
func sendTracedBatch(t *testing.T, s *stack.Stack, db *pgmqtest.DB, n int) []int64 {
	t.Helper()
	ctx := t.Context()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Collector.GRPCAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", batchService))))
	defer func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("trace provider shutdown: %v", err)
		}
	}()
	tr := otelpgmq.NewTracer(otelpgmq.WithTracerProvider(tp), otelpgmq.WithPropagator(propagation.TraceContext{}))
	c := pgmqclient.New(db.Pool, pgmqclient.WithTracer(tr))
	if err := c.CreateQueue(ctx, tracedQueue); err != nil { // the orchestrator may not have made it yet
		t.Fatal(err)
	}
	payloads := make([]json.RawMessage, n)
	for i := range payloads {
		payloads[i] = json.RawMessage(fmt.Sprintf(`{"batch_item":%d}`, i))
	}
	ids, err := c.SendBatch(ctx, tracedQueue, payloads)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// spansByID indexes a trace's spans.
func spansByID(tr stack.JaegerTrace) map[string]stack.JaegerSpan {
	m := make(map[string]stack.JaegerSpan, len(tr.Spans))
	for _, sp := range tr.Spans {
		m[sp.SpanID] = sp
	}
	return m
}

// parentID returns the span id sp is the child of ("" for a root): Jaeger
// puts the parent first among the references, in the same trace. A parent
// that is also a link (a process span under WithProcessParent links to its
// parent, the creation context) shows as one FOLLOWS_FROM reference, as
// Jaeger's OTLP translation merges the two; its UI nests the span under it
// all the same.
func parentID(sp stack.JaegerSpan) string {
	if len(sp.References) == 0 || sp.References[0].TraceID != sp.TraceID {
		return ""
	}
	if r := sp.References[0]; r.RefType == "CHILD_OF" || r.RefType == "FOLLOWS_FROM" {
		return r.SpanID
	}
	return ""
}

// parentOf returns sp's parent among byID.
func parentOf(sp stack.JaegerSpan, byID map[string]stack.JaegerSpan) (stack.JaegerSpan, bool) {
	p, ok := byID[parentID(sp)]
	return p, ok
}

// links returns the span ids sp links to (Jaeger shows links as
// FOLLOWS_FROM references).
func links(sp stack.JaegerSpan) []string {
	var out []string
	for _, r := range sp.References {
		if r.RefType == "FOLLOWS_FROM" {
			out = append(out, r.SpanID)
		}
	}
	return out
}

// follows reports whether sp links to the span id.
func follows(sp stack.JaegerSpan, id string) bool { return slices.Contains(links(sp), id) }

// readmeSpanKinds reads docs/tracing.md's table of spans (between
// <!-- spans:start --> and <!-- spans:end -->) as a set of "name kind",
// the queue written <queue>.
func readmeSpanKinds(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../docs/tracing.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<!-- spans:start -->(.*)<!-- spans:end -->`).FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/tracing.md has no table of spans")
	}
	out := map[string]bool{}
	for _, r := range regexp.MustCompile("(?m)^\\| [^|]* \\| `([^`]+)` \\| (PRODUCER|CONSUMER|CLIENT) \\|").FindAllSubmatch(m[1], -1) {
		out[string(r[1])+" "+string(r[2])] = true
	}
	return out
}
