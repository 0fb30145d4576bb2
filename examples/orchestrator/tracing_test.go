package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// A message sent by the producer and handled by a processor is one trace:
// send, then process as its child (and linked to it), then archive inside
// process. A failed
// attempt is a process span with an error.
func TestOneTracePerMessage(t *testing.T) {
	db := pgmqtest.New(t)
	cfg := testConfig(db.URL)
	cfg.FailRate = 0.3
	rec := tracetest.NewSpanRecorder()
	cfg.spanProcessor = rec
	r := start(t, cfg)

	var send, proc, archive sdktrace.ReadOnlySpan
	var failed bool
	waitFor(t, time.Minute, "a message traced from send to archive, and a failed attempt with error.type task_failed", func() bool {
		spans := rec.Ended()
		byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans {
			byID[s.SpanContext().SpanID()] = s
		}
		for _, s := range spans {
			if s.Name() == "process task_requests" && s.Status().Code == codes.Error {
				for _, kv := range s.Attributes() {
					failed = failed || (kv.Key == "error.type" && kv.Value.AsString() == "task_failed")
				}
			}
			if s.Name() != "archive task_requests" {
				continue
			}
			p, ok := byID[s.Parent().SpanID()]
			if !ok || p.Name() != "process task_requests" {
				continue
			}
			if sd, ok := byID[p.Parent().SpanID()]; ok && sd.Name() == "send task_requests" {
				send, proc, archive = sd, p, s
			}
		}
		return archive != nil && failed
	})
	if err := r.stop(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if tid := send.SpanContext().TraceID(); proc.SpanContext().TraceID() != tid || archive.SpanContext().TraceID() != tid {
		t.Error("send, process and archive are not in one trace")
	}
	if send.SpanKind() != trace.SpanKindProducer || proc.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds: send %v, process %v", send.SpanKind(), proc.SpanKind())
	}
	// WithProcessParent: the process span also links to its parent, the
	// creation context, as the conventions ask.
	if l := proc.Links(); len(l) == 0 || l[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("process links %v, want the send span", l)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, strings.Fields(s.Name())[0])
	}
	slices.Sort(names)
	if names = slices.Compact(names); !slices.Contains(names, "read") {
		t.Errorf("span names %v, want read spans too", names)
	}
}
