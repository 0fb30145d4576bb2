package otelmetrics

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"
	"google.golang.org/grpc/grpclog"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// TestMain fails the package's tests if any goroutine is still running once
// they have all finished: every pool, sampler connection, exporter and
// reader a test starts must be stopped by Close and Shutdown.
//
// It also routes gRPC's log, at every severity, through grpcLog, so the
// secrets test can read what gRPC logged while exports failed. gRPC's
// logger may only be replaced before gRPC is first used, hence here.
// Errors still reach stderr, as with gRPC's default logger.
func TestMain(m *testing.M) {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(grpcLog, io.Discard, os.Stderr, 99))
	goleak.VerifyTestMain(m)
}

// grpcLog keeps the most recent gRPC log output.
var grpcLog = &boundedLog{limit: 4 << 20}

// boundedLog is an io.Writer keeping the last limit bytes written.
type boundedLog struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (b *boundedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (b *boundedLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
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
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
			reader := sdkmetric.NewManualReader()
			p, err := NewMeterProvider(ctx, WithReader(reader))
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(WithMeterProvider(p), WithPool("", db.Pool), WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: time.Second}))
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
