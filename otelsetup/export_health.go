package otelsetup

import "sync/atomic"

// exportFailuresUnhealthy is how many exports in a row must fail before a
// MeterProvider's exports count as unhealthy. One failure may be a
// collector restarting; the exporter already retried within it.
const exportFailuresUnhealthy = 2

// exportHealth follows the outcome of a MeterProvider's OTLP exports.
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

// ExportHealthy reports whether this MeterProvider's metrics reach the
// OTLP endpoint: false once two exports in a row have failed, true again
// after the next success. It is true when there is no OTLP exporter
// (disabled, or no otlp in OTEL_METRICS_EXPORTER). MetricsOptions gives it
// to otelmetrics' sampler election (otelmetrics.WithExportHealth), so a
// replica that cannot export hands queue sampling over.
func (p *MeterProvider) ExportHealthy() bool {
	return p.health == nil || p.health.healthy()
}
