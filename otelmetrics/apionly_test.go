package otelmetrics

import (
	"testing"

	"github.com/pgmqotel/pgmqotel/internal/testkit/apideps"
)

// Importing otelmetrics brings in the OpenTelemetry API, pgx and this
// module's instrumentation, never the SDK, an exporter, gRPC or the
// Prometheus client: the application chooses those (package otelsetup
// holds this module's choice).
func TestAPIOnly(t *testing.T) {
	apideps.Check(t, ".")
}
