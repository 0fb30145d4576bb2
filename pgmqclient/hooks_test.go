package pgmqclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// headerHook adds fixed keys to every message's headers and records what
// the client told it. It is the least tracer that exercises the hooks.
type headerHook struct {
	add map[string]string

	mu      sync.Mutex
	sends   []pgmqclient.TraceSendEndData
	batches []pgmqclient.TraceSendBatchEndData
	recvs   []pgmqclient.TraceReceiveStartData
	got     [][]pgmqclient.Message
	settles []pgmqclient.TraceSettleStartData
	settled []pgmqclient.TraceSettleEndData
}

type hookKey struct{}

func (h *headerHook) TraceSendStart(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSendStartData) context.Context {
	for k, v := range h.add {
		d.Headers.Set(k, v)
	}
	return context.WithValue(ctx, hookKey{}, d.Queue)
}

func (h *headerHook) TraceSendEnd(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSendEndData) {
	if ctx.Value(hookKey{}) == nil {
		panic("End did not get Start's context")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sends = append(h.sends, d)
}

func (h *headerHook) TraceSendBatchStart(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSendBatchStartData) context.Context {
	for i := range d.Headers {
		for k, v := range h.add {
			d.Headers[i].Set(k, v+"-"+string(rune('0'+i)))
		}
	}
	return ctx
}

func (h *headerHook) TraceSendBatchEnd(_ context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSendBatchEndData) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batches = append(h.batches, d)
}

func (h *headerHook) TraceReceiveStart(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceReceiveStartData) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recvs = append(h.recvs, d)
	return ctx
}

func (h *headerHook) TraceReceiveEnd(_ context.Context, _ *pgmqclient.Client, d pgmqclient.TraceReceiveEndData) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, d.Messages)
}

func (h *headerHook) TraceSettleStart(ctx context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSettleStartData) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settles = append(h.settles, d)
	return ctx
}

func (h *headerHook) TraceSettleEnd(_ context.Context, _ *pgmqclient.Client, d pgmqclient.TraceSettleEndData) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settled = append(h.settled, d)
}

func headersOf(t *testing.T, m pgmqclient.Message) map[string]any {
	t.Helper()
	if m.Headers == nil {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(m.Headers, &out); err != nil {
		t.Fatalf("headers %s: %v", m.Headers, err)
	}
	return out
}

// The keys a hook adds reach PGMQ's headers; the caller's keys and PGMQ's
// own x-pgmq-* keys are never overwritten, and a caller that set one of
// the hook's keys gets none of them (no mixed context); non-object headers
// stay as sent.
func TestHookHeadersMergedIntoPGMQHeaders(t *testing.T) {
	ctx, _, db := setup(t, "hq")
	h := &headerHook{add: map[string]string{"traceparent": "tp-hook", "tracestate": "ts-hook", "x-pgmq-group": "hook-group"}}
	c := pgmqclient.New(db.Pool, pgmqclient.WithTracer(h))

	send := func(headers string) {
		t.Helper()
		var opts []pgmqclient.SendOption
		if headers != "" {
			opts = append(opts, pgmqclient.WithHeaders(json.RawMessage(headers)))
		}
		if _, err := c.Send(ctx, "hq", json.RawMessage(`{}`), opts...); err != nil {
			t.Fatal(err)
		}
	}
	send("")
	send(`{"traceparent":"caller","x-pgmq-group":"g1","n":1}`)
	send(`["not","an","object"]`)
	if _, err := c.SendBatch(ctx, "hq", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`2`)},
		pgmqclient.WithBatchHeaders([]json.RawMessage{nil, json.RawMessage(`{"tracestate":"caller"}`)})); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Read(ctx, "hq", time.Minute, 10)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("Read = %d messages, %v", len(msgs), err)
	}
	want := []map[string]any{
		{"traceparent": "tp-hook", "tracestate": "ts-hook"},
		{"traceparent": "caller", "x-pgmq-group": "g1", "n": float64(1)},
		nil, // an array: checked below
		{"traceparent": "tp-hook-0", "tracestate": "ts-hook-0"},
		{"tracestate": "caller"},
	}
	for i, m := range msgs {
		if i == 2 {
			var arr []string
			if err := json.Unmarshal(m.Headers, &arr); err != nil || len(arr) != 3 {
				t.Errorf("message 2 headers = %s, want the array as sent", m.Headers)
			}
			continue
		}
		got := headersOf(t, m)
		if len(got) != len(want[i]) {
			t.Errorf("message %d headers = %v, want %v", i, got, want[i])
			continue
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("message %d header %q = %v, want %v", i, k, got[k], v)
			}
		}
	}
	if len(h.sends) != 3 || !h.sends[0].HeadersAdded || h.sends[0].MsgID != msgs[0].ID || h.sends[1].HeadersAdded || h.sends[2].HeadersAdded {
		t.Errorf("send end data = %+v", h.sends)
	}
	if len(h.batches) != 1 || !h.batches[0].HeadersAdded || len(h.batches[0].MsgIDs) != 2 {
		t.Errorf("batch end data = %+v", h.batches)
	}
	if len(h.recvs) != 1 || h.recvs[0].Operation != pgmqclient.OperationRead || h.recvs[0].Qty != 10 ||
		h.recvs[0].VisibilityTimeout != time.Minute || len(h.got[0]) != 5 {
		t.Errorf("receive data = %+v, %d messages", h.recvs, len(h.got))
	}
}

// The settle hooks see every settle with its ids and how many existed.
func TestSettleHooks(t *testing.T) {
	ctx, _, db := setup(t, "sq")
	h := &headerHook{}
	c := pgmqclient.New(db.Pool, pgmqclient.WithTracer(h))
	ids := sendN(t, ctx, c, "sq", 4)
	if _, err := c.Delete(ctx, "sq", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ArchiveBatch(ctx, "sq", []int64{ids[1], ids[2], 999999}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetVisibilityTimeout(ctx, "sq", ids[3], 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetVisibilityTimeout(ctx, "sq", 999999, 0); !errors.Is(err, pgmqclient.ErrMessageNotFound) {
		t.Fatalf("set_vt of a missing message: %v", err)
	}
	ops := []pgmqclient.Operation{pgmqclient.OperationDelete, pgmqclient.OperationArchive, pgmqclient.OperationSetVT, pgmqclient.OperationSetVT}
	settled := []int{1, 2, 1, 0}
	if len(h.settles) != 4 {
		t.Fatalf("%d settle hooks, want 4", len(h.settles))
	}
	for i := range ops {
		if h.settles[i].Operation != ops[i] || h.settled[i].Settled != settled[i] {
			t.Errorf("settle %d = %+v / %+v, want %s settling %d", i, h.settles[i], h.settled[i], ops[i], settled[i])
		}
	}
	if h.settles[2].VisibilityTimeout != 2*time.Second || len(h.settles[1].MsgIDs) != 3 || h.settled[3].Err == nil {
		t.Errorf("settle data = %+v / %+v", h.settles, h.settled)
	}
}

// On a server whose send takes no headers the hook's keys are dropped and
// the send goes ahead, also inside a transaction (no failed statement).
func TestHookHeadersWithoutHeadersSupport(t *testing.T) {
	ctx, _, db := setup(t, "old")
	db.RemoveHeaderSupport(t)
	h := &headerHook{add: map[string]string{"traceparent": "tp"}}

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	c := pgmqclient.New(tx, pgmqclient.WithTracer(h))
	if _, err := c.Send(ctx, "old", json.RawMessage(`{}`)); err != nil {
		t.Fatalf("Send without headers support: %v", err)
	}
	if _, err := c.SendBatch(ctx, "old", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`2`)}); err != nil {
		t.Fatalf("SendBatch without headers support: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := pgmqclient.New(db.Pool).Read(ctx, "old", time.Minute, 10)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("Read = %d, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if m.Headers != nil {
			t.Errorf("message %d has headers %s", m.ID, m.Headers)
		}
	}
	if h.sends[0].HeadersAdded || h.batches[0].HeadersAdded || h.sends[0].Err != nil {
		t.Errorf("end data = %+v %+v", h.sends, h.batches)
	}
}

func TestOpErrorErrorType(t *testing.T) {
	ctx, c, _ := setup(t)
	cases := []struct {
		err  error
		want string
	}{
		{func() error { _, err := c.Send(ctx, "bad;name", json.RawMessage(`{}`)); return err }(), "invalid_queue_name"},
		{func() error { _, err := c.Read(ctx, "q", -time.Second, 1); return err }(), "invalid_argument"},
		{func() error { _, err := c.Read(ctx, "missing", time.Second, 1); return err }(), "queue_not_found"},
		{func() error { _, err := c.SetVisibilityTimeout(ctx, "missing", 1, 0); return err }(), "queue_not_found"},
		{func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := c.Read(cctx, "q", time.Second, 1)
			return err
		}(), "canceled"},
		{&pgmqclient.OpError{Op: "x", Err: &pgconn.PgError{Code: "40001"}}, "40001"},
		{&pgmqclient.OpError{Op: "x", Err: errors.New("other")}, "_OTHER"},
	}
	for i, tc := range cases {
		var oe *pgmqclient.OpError
		if !errors.As(tc.err, &oe) {
			t.Errorf("case %d: %v is not an *OpError", i, tc.err)
			continue
		}
		if got := oe.ErrorType(); got != tc.want {
			t.Errorf("case %d: ErrorType(%v) = %q, want %q", i, tc.err, got, tc.want)
		}
	}
}

// A program that uses only the client must not pull in OpenTelemetry.
func TestClientHasNoOpenTelemetryDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "go.opentelemetry.io/") {
			t.Errorf("pgmqclient depends on %s", pkg)
		}
	}
}
