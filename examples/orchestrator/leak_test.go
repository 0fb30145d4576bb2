package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/otelsetup"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// shutdownSpy is a span processor that records its Shutdown.
type shutdownSpy struct{ shut atomic.Bool }

func (*shutdownSpy) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (*shutdownSpy) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (*shutdownSpy) ForceFlush(context.Context) error                { return nil }
func (s *shutdownSpy) Shutdown(context.Context) error                { s.shut.Store(true); return nil }

// Issue 18: a run that fails after the providers are built (here:
// otelmetrics.New refuses an election TTL too short) shuts both down
// before returning.
func TestFailedStartShutsProvidersDown(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("postgres://postgres@127.0.0.1:1/none")
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.hooks = &testHooks{metricsOptions: []otelmetrics.Option{
		otelmetrics.WithQueueSampler(queuesampler.Config{Conn: pc, ElectionTTL: time.Nanosecond})}}
	spy := &shutdownSpy{}
	cfg.spanProcessor = spy
	reader := sdkmetric.NewManualReader()
	err = run(context.Background(), cfg, ln, io.Discard, otelsetup.WithReader(reader))
	if !errors.Is(err, queuesampler.ErrInvalidElectionTTL) {
		t.Fatalf("run: %v, want queuesampler.ErrInvalidElectionTTL", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		t.Errorf("the meter provider was left running (collect: %v)", err)
	}
	if !spy.shut.Load() {
		t.Error("the tracer provider was left running")
	}
}
