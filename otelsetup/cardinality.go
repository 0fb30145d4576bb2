package otelsetup

import (
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
)

// DefaultCardinalityLimit is the limit NewMeterProvider sets unless told
// otherwise (WithCardinalityLimit, OTEL_GO_X_CARDINALITY_LIMIT):
// pgmq.queue.depth reports two points per queue, so this fits 10,000
// queues. The SDK's own default is 2,000.
const DefaultCardinalityLimit = 20_001

// envCardinalityLimit is the SDK's experimental variable for the limit.
const envCardinalityLimit = "OTEL_GO_X_CARDINALITY_LIMIT"

// cardinalityLimit is the limit NewMeterProvider gives the SDK: the
// option's, else OTEL_GO_X_CARDINALITY_LIMIT's (as the SDK reads it),
// else DefaultCardinalityLimit. Zero or less means no limit.
func cardinalityLimit(cfg meterConfig) int {
	if cfg.limit != nil {
		return *cfg.limit
	}
	if v := strings.TrimSpace(os.Getenv(envCardinalityLimit)); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		otel.Handle(&EnvWarning{Name: envCardinalityLimit, Value: v, Supported: "a whole number",
			Using: strconv.Itoa(DefaultCardinalityLimit)})
	}
	return DefaultCardinalityLimit
}
