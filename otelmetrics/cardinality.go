package otelmetrics

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
)

// SDKDefaultCardinalityLimit is the OpenTelemetry Go SDK's default limit of
// points per instrument and collection. Past it the SDK folds the other
// points into one point with otel.metric.overflow=true.
const SDKDefaultCardinalityLimit = 2000

// DefaultCardinalityLimit is the limit NewMeterProvider sets unless told
// otherwise (WithCardinalityLimit): pgmq.queue.depth reports two points per
// queue, so this fits 10,000 queues.
const DefaultCardinalityLimit = 20_001

// depthPointsPerQueue is the number of pgmq.queue.depth points of one
// queue: visible and invisible.
const depthPointsPerQueue = 2

// cardinalityLimitOf is the limit the queue instruments will meet: the one
// declared with WithProviderCardinalityLimit, else that of a Provider of
// NewMeterProvider, else the SDK's default (a provider this module did not
// make, whose limit it cannot read). -1 means no limit.
func cardinalityLimitOf(cfg config) int {
	if cfg.providerLimit != 0 {
		return cfg.providerLimit
	}
	if p, ok := cfg.meterProvider.(*Provider); ok {
		if p.cardinalityLimit <= 0 {
			return -1
		}
		return p.cardinalityLimit
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
		"the rest fold into one otel.metric.overflow point; raise the limit (otelmetrics.WithCardinalityLimit, sdkmetric.WithCardinalityLimit) "+
		"or select fewer queues (WithQueueInclude, WithQueueExclude)",
		queues, queues*depthPointsPerQueue, MetricQueueDepth, c.limit))
}

// providerCardinalityLimit is the limit NewMeterProvider gives the SDK:
// the option's, else OTEL_GO_X_CARDINALITY_LIMIT's (as the SDK reads it),
// else DefaultCardinalityLimit.
func providerCardinalityLimit(cfg providerConfig) int {
	if cfg.limit != nil {
		return *cfg.limit
	}
	if v := strings.TrimSpace(os.Getenv("OTEL_GO_X_CARDINALITY_LIMIT")); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		otel.Handle(fmt.Errorf("otelmetrics: OTEL_GO_X_CARDINALITY_LIMIT=%q is not an integer; using %d", v, DefaultCardinalityLimit))
	}
	return DefaultCardinalityLimit
}
