package otelmetrics

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pgmqotel/pgmqotel/queuesampler"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// exportFailuresUnhealthy is how many exports in a row must fail before a
// Provider's exports count as unhealthy. One failure may be a collector
// restarting; the exporter already retried within it.
const exportFailuresUnhealthy = 2

// defaultExportInterval is the SDK's default OTEL_METRIC_EXPORT_INTERVAL.
const defaultExportInterval = time.Minute

// exportHealth follows the outcome of a Provider's OTLP exports.
type exportHealth struct {
	failures atomic.Int64 // consecutive failed exports
}

func (h *exportHealth) record(err error) {
	if err != nil {
		h.failures.Add(1)
		return
	}
	h.failures.Store(0)
}

func (h *exportHealth) healthy() bool {
	return h.failures.Load() < exportFailuresUnhealthy
}

// healthExporter records the outcome of every export of the exporter it
// wraps, and is otherwise that exporter.
type healthExporter struct {
	sdkmetric.Exporter
	health *exportHealth
}

// Export implements sdkmetric.Exporter.
func (e *healthExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := e.Exporter.Export(ctx, rm)
	e.health.record(err)
	return err
}

// exportHealthWrapper returns the innermost OTLP exporter wrapper, which
// makes p report the health of its OTLP exports.
func (p *Provider) exportHealthWrapper(cfg *providerConfig) func(sdkmetric.Exporter) sdkmetric.Exporter {
	return func(exp sdkmetric.Exporter) sdkmetric.Exporter {
		p.health = &exportHealth{}
		p.interval = exportInterval(*cfg)
		return &healthExporter{Exporter: exp, health: p.health}
	}
}

// ExportHealthy reports whether this Provider's metrics reach the OTLP
// endpoint: false once two exports in a row have failed, true again after
// the next success. It is true when there is no OTLP exporter (disabled,
// or OTEL_METRICS_EXPORTER=none). New gives it to the sampler election, so
// a replica that cannot export hands queue sampling over.
func (p *Provider) ExportHealthy() bool {
	return p.health == nil || p.health.healthy()
}

// exportInterval is the periodic reader's interval as the SDK will see it.
func exportInterval(cfg providerConfig) time.Duration {
	if cfg.interval > 0 {
		return cfg.interval
	}
	if v := strings.TrimSpace(os.Getenv("OTEL_METRIC_EXPORT_INTERVAL")); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return defaultExportInterval
}

// defaultElectionTTL is three export intervals plus the sample timeout:
// the leader renews at every collection, so two may be late or fail before
// the lease lapses.
func defaultElectionTTL(mp any, sampleTimeout time.Duration) time.Duration {
	if p, ok := mp.(*Provider); ok && p.interval > 0 {
		return 3*p.interval + sampleTimeout
	}
	return queuesampler.DefaultElectionTTL
}
