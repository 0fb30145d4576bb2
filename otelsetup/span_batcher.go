package otelsetup

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgmqotel/pgmqotel/otelsetup/internal/spanbatch"
)

// NewSpanBatcher returns the span processor NewTracerProvider exports
// through: spans are exported in batches by a background goroutine, with
// the SDK BatchSpanProcessor's settings and defaults, read from the same
// variables (OTEL_BSP_SCHEDULE_DELAY 5000 ms, OTEL_BSP_EXPORT_TIMEOUT
// 30000 ms, OTEL_BSP_MAX_QUEUE_SIZE 2048, OTEL_BSP_MAX_EXPORT_BATCH_SIZE
// 512; a value that is not a positive integer is an *EnvError). Unlike the
// SDK's, it does not wake its goroutine for every span that ends, only when
// a batch is full or the delay has passed, which takes most of a sampled
// span's cost off the instrumented call (BENCHMARKS.md, bar 6). A full
// queue drops spans and reports how many through otel.Handle. Use it with
// a TracerProvider of your own: sdktrace.WithSpanProcessor(batcher).
func NewSpanBatcher(exp sdktrace.SpanExporter) (sdktrace.SpanProcessor, error) {
	if exp == nil {
		return nil, errors.New("otelsetup: NewSpanBatcher: nil exporter")
	}
	cfg, err := spanBatcherConfig()
	if err != nil {
		return nil, err
	}
	return spanbatch.New(exp, cfg), nil
}

// spanBatcherConfig reads OTEL_BSP_*.
func spanBatcherConfig() (spanbatch.Config, error) {
	var cfg spanbatch.Config
	for _, v := range []struct {
		name string
		def  int
		set  func(int)
		ms   bool
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", 5000, func(n int) { cfg.ScheduleDelay = time.Duration(n) * time.Millisecond }, true},
		{"OTEL_BSP_EXPORT_TIMEOUT", 30000, func(n int) { cfg.ExportTimeout = time.Duration(n) * time.Millisecond }, true},
		{"OTEL_BSP_MAX_QUEUE_SIZE", spanbatch.DefaultMaxQueueSize, func(n int) { cfg.MaxQueueSize = n }, false},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", spanbatch.DefaultMaxExportBatchSize, func(n int) { cfg.MaxExportBatchSize = n }, false},
	} {
		raw, set := lookup(v.name)
		if !set {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		limit := math.MaxInt32
		if v.ms {
			limit = int(math.MaxInt64 / int64(time.Millisecond))
		}
		if err != nil || n <= 0 || n > limit {
			unit := "a positive whole number"
			if v.ms {
				unit += " of milliseconds, no unit"
			}
			return cfg, &EnvError{Name: v.name, Value: raw, Supported: unit, Instead: strconv.Itoa(v.def)}
		}
		v.set(n)
	}
	return cfg, nil
}
