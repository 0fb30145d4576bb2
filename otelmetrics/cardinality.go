package otelmetrics

import (
	"fmt"

	"go.opentelemetry.io/otel"
)

// SDKDefaultCardinalityLimit is the OpenTelemetry Go SDK's default limit of
// points per instrument and collection. Past it the SDK folds the other
// points into one point with otel.metric.overflow=true.
const SDKDefaultCardinalityLimit = 2000

// depthPointsPerQueue is the number of pgmq.queue.depth points of one
// queue: visible and invisible.
const depthPointsPerQueue = 2

// cardinalityLimitOf is the limit the queue instruments will meet: the one
// declared with WithDeclaredCardinalityLimit, else the SDK's default (this
// module cannot read a MeterProvider's limit). -1 means no limit.
func cardinalityLimitOf(cfg config) int {
	if cfg.providerLimit != 0 {
		return cfg.providerLimit
	}
	return SDKDefaultCardinalityLimit
}

// cardinalityCheck warns once, through otel.Handle, when the sampled
// queues need more depth points than the provider keeps.
type cardinalityCheck struct {
	limit  int
	warned bool
}

// check is called with the number of queues of a sample (under the
// sampler's sem). The SDK keeps limit-1 attribute sets per instrument and
// folds the rest into its overflow point.
func (c *cardinalityCheck) check(queues int) {
	if c.warned || c.limit <= 0 || queues*depthPointsPerQueue <= c.limit-1 {
		return
	}
	c.warned = true
	otel.Handle(fmt.Errorf("otelmetrics: %d queues need %d %s points per collection, more than the MeterProvider's cardinality limit of %d: "+
		"the rest fold into one otel.metric.overflow point; raise the limit (otelsetup.WithCardinalityLimit, sdkmetric.WithCardinalityLimit) "+
		"and declare it (otelmetrics.WithDeclaredCardinalityLimit, among otelsetup's MetricsOptions), or select fewer queues (WithQueueInclude, WithQueueExclude)",
		queues, queues*depthPointsPerQueue, MetricQueueDepth, c.limit))
}
