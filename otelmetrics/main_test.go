package otelmetrics

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// TestMain fails the package's tests if any goroutine is still running once
// they have all finished: every pool, sampler connection, exporter and
// reader a test starts must be stopped by Close and Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// After Close and Shutdown nothing of a full setup keeps running: not the
// sampler's connection, not the periodic reader, not the exporter's gRPC
// connection, whether or not the collector was reachable. The check runs
// last, after the test's own servers and database are gone.
func TestNoGoroutineSurvivesShutdown(t *testing.T) {
	for _, reachable := range []bool{true, false} {
		t.Run(map[bool]string{true: "collector up", false: "collector unreachable"}[reachable], func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, before) })
			cleanEnv(t)
			setErrorHandler(t)
			db := pgmqtest.New(t)
			ctx := context.Background()
			if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "leaks"); err != nil {
				t.Fatal(err)
			}
			addr := closedPort(t)
			var sink *otlpSink
			if reachable {
				sink = startSink(t)
				addr = sink.addr
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
			reader := sdkmetric.NewManualReader()
			p, opts := newOTLPMeterProvider(t, 50*time.Millisecond, nil, sdkmetric.WithReader(reader))
			m, err := New(append(opts, WithPool("", db.Pool),
				WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: time.Second}))...)
			if err != nil {
				t.Fatal(err)
			}
			run := m.Processor("worker").Start()
			if v := collect(t, reader).mustValue(t, MetricQueueDepth, queueAttr("leaks"), visible); v != 0 {
				t.Fatalf("depth = %v", v)
			}
			if reachable {
				eventually(t, hangGuard, "an export", func() bool { return sink.exports() > 0 })
			}
			run.Finish()
			if err := m.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			shutCtx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			err = p.Shutdown(shutCtx)
			if reachable && err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}
