package otelmetrics

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

var (
	visible   = attribute.String(AttrMessageState, "visible")
	invisible = attribute.String(AttrMessageState, "invisible")
)

func queueAttr(q string) attribute.KeyValue { return attribute.String(AttrDestinationName, q) }

func sendN(t testing.TB, c *pgmqclient.Client, queue string, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.Send(context.Background(), queue, json.RawMessage(`{"n":`+itoa(i)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestQueueDepth(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, NoElection: true}))
	q := queueAttr("orders")
	sys := attribute.String(AttrMessagingSystem, "pgmq")

	got := collect(t, r)
	if v := got.mustValue(t, MetricQueueDepth, q, sys, visible); v != 0 {
		t.Fatalf("empty queue visible = %v", v)
	}
	if v := got.mustValue(t, MetricQueueDepth, q, invisible); v != 0 {
		t.Fatalf("empty queue invisible = %v", v)
	}
	if v := got.mustValue(t, MetricQueueOldestAge, q, sys); v != 0 {
		t.Fatalf("empty queue oldest age = %v, want 0", v)
	}

	sendN(t, c, "orders", 10)
	got = collect(t, r)
	if v := got.mustValue(t, MetricQueueDepth, q, visible); v != 10 {
		t.Fatalf("after ten sends visible = %v, want 10", v)
	}
	if v := got.mustValue(t, MetricQueueSent, q, sys); v != 10 {
		t.Fatalf("sent = %v, want 10", v)
	}

	msgs, err := c.Read(ctx, "orders", time.Minute, 3)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("read: %v, %d messages", err, len(msgs))
	}
	got = collect(t, r)
	if v, w := got.mustValue(t, MetricQueueDepth, q, visible), got.mustValue(t, MetricQueueDepth, q, invisible); v != 7 || w != 3 {
		t.Fatalf("after reading 3 with a visibility timeout: visible %v invisible %v, want 7 and 3", v, w)
	}

	if ok, err := c.Delete(ctx, "orders", msgs[0].ID); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, err := c.Archive(ctx, "orders", msgs[1].ID); err != nil || !ok {
		t.Fatalf("archive: %v %v", ok, err)
	}
	got = collect(t, r)
	if v, w := got.mustValue(t, MetricQueueDepth, q, visible), got.mustValue(t, MetricQueueDepth, q, invisible); v+w != 8 || w != 1 {
		t.Fatalf("after delete+archive: visible %v invisible %v, want 7 and 1", v, w)
	}
	if v := got.mustValue(t, MetricQueueSent, q); v != 10 {
		t.Fatalf("sent after delete = %v, want still 10", v)
	}
}

func TestQueueOldestAgeGrows(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "ages"); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "ages", 1)
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{Queues: []string{"ages"}}, MinInterval: -1, NoElection: true}))
	first := collect(t, r).mustValue(t, MetricQueueOldestAge, queueAttr("ages"))
	if first < 0 {
		t.Fatalf("negative age %v", first)
	}
	eventually(t, 10*time.Second, "oldest age to grow", func() bool {
		return collect(t, r).mustValue(t, MetricQueueOldestAge, queueAttr("ages")) > first
	})
}

func TestQueueDiscoveryFollowsCreateAndDrop(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"a_queue", "MixedCase"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	m, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, NoElection: true}))
	got := collect(t, r)
	for _, q := range []string{"a_queue", "MixedCase"} {
		if _, ok := got.value(MetricQueueDepth, queueAttr(q), visible); !ok {
			t.Fatalf("queue %s not reported; points %v", q, got.points(MetricQueueDepth))
		}
	}
	if _, err := c.DropQueue(ctx, "a_queue"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateQueue(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	got = collect(t, r)
	if _, ok := got.value(MetricQueueDepth, queueAttr("a_queue")); ok {
		t.Fatal("a dropped queue is still reported")
	}
	if _, ok := got.value(MetricQueueDepth, queueAttr("later"), visible); !ok {
		t.Fatal("a queue created after start is not reported")
	}
	if s := m.Snapshot(ctx); len(s.Databases[0].Queues) != 2 || len(s.Databases) == 0 || !s.Databases[0].Healthy {
		t.Fatalf("snapshot queues %v sampler %+v", s.Databases[0].Queues, s.Databases)
	}
}

func TestQueueFixedListReportsOnlyThose(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"wanted", "other"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "wanted", 2)
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), Depth: queuedepth.Options{Queues: []string{"Wanted", "missing"}}, MinInterval: -1, NoElection: true}))
	got := collect(t, r)
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("wanted"), visible); v != 2 {
		t.Fatalf("wanted = %v, want 2", v)
	}
	for _, q := range []string{"other", "missing"} {
		if _, ok := got.value(MetricQueueDepth, queueAttr(q)); ok {
			t.Fatalf("queue %s reported", q)
		}
	}
}

func TestQueueSamplingRejectsBadNames(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = New(WithQueueSampler(queuesampler.Config{Conn: pool.Config(), Depth: queuedepth.Options{Queues: []string{"ok", "bad;name"}}}))
	if !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
		t.Fatalf("New with a hostile queue name: %v, want ErrInvalidQueueName", err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

type countingHandler struct {
	mu   sync.Mutex
	errs []error
}

func (h *countingHandler) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, err)
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.errs)
}

func setErrorHandler(t testing.TB) *countingHandler {
	h := &countingHandler{}
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(h)
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	return h
}

func TestQueueSamplingWithDatabaseUnreachable(t *testing.T) {
	h := setErrorHandler(t)
	pool, err := pgxpool.New(context.Background(), "postgres://postgres:hunter2@"+closedPort(t)+"/none?connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m, r := newTestMetrics(t, WithPool("", pool), WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1, SampleTimeout: 300 * time.Millisecond}))
	run := m.Processor("worker").Start()
	defer run.Finish()

	for i := 1; i <= 3; i++ {
		got := collect(t, r)
		if v := got.mustValue(t, MetricProcessorActive, kindAttr("worker")); v != 1 {
			t.Fatalf("processors = %v, want 1", v)
		}
		if _, ok := got.value(MetricConnectionMax); !ok {
			t.Fatal("pool metrics missing while the database is down")
		}
		if pts := got.points(MetricQueueDepth); len(pts) != 0 {
			t.Fatalf("queue points reported while the database is down: %v", pts)
		}
		if pts := got.points(MetricQueueOldestAge); len(pts) != 0 {
			t.Fatalf("age points reported while the database is down: %v", pts)
		}
		if v := got.mustValue(t, MetricSamplerErrors, attribute.String(AttrErrorType, "connection")); v != float64(i) {
			t.Fatalf("failures after %d collections = %v", i, v)
		}
	}
	if n := h.count(); n != 1 {
		t.Fatalf("the same failure was handed to otel.Handle %d times, want once", n)
	}
	snap := m.Snapshot(context.Background())
	if len(snap.Databases) == 0 || snap.Databases[0].Healthy || snap.Databases[0].Error == "" {
		t.Fatalf("snapshot sampler = %+v, want unhealthy with an error", snap.Databases)
	}
}

// Several readers collecting at once cause at most one sample per interval.
func TestQueueSamplingIsThrottled(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "throttled"); err != nil {
		t.Fatal(err)
	}
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }

	r1, r2 := sdkmetric.NewManualReader(), sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r1), sdkmetric.WithReader(r2))
	defer func() { _ = mp.Shutdown(ctx) }()
	m, err := New(WithMeterProvider(mp), WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: 10 * time.Second, NoElection: true, Now: clock}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	samples := func() int64 { return sampler(m).Stats().Attempts }

	var wg sync.WaitGroup
	for range 3 {
		for _, r := range []*sdkmetric.ManualReader{r1, r2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var rm metricdata.ResourceMetrics
				if err := r.Collect(ctx, &rm); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Snapshot(ctx)
		}()
	}
	wg.Wait()
	if n := samples(); n != 1 {
		t.Fatalf("samples within one interval = %d, want 1", n)
	}
	sendN(t, c, "throttled", 1)
	later := start.Add(10 * time.Second)
	now.Store(&later)
	if v := collect(t, r1).mustValue(t, MetricQueueDepth, queueAttr("throttled"), visible); v != 1 {
		t.Fatalf("depth after the interval = %v, want 1 (a fresh sample)", v)
	}
	if n := samples(); n != 2 {
		t.Fatalf("samples after the interval = %d, want 2", n)
	}
}
