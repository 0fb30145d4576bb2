// Code in the shape cmd/mdatagen generates from metadata.yaml, written by
// hand (the generator is not available to this project).

package metadata

import (
	"go.opentelemetry.io/collector/component"
)

// Type is the receiver's type, the key of its configuration (pgmq).
var Type = component.MustNewType("pgmq")

// ScopeName is the instrumentation scope of the receiver's metrics.
const ScopeName = "github.com/pgmqotel/pgmqotel/collector/pgmqreceiver"

// MetricsStability is the stability of the receiver's metrics signal.
const MetricsStability = component.StabilityLevelAlpha
