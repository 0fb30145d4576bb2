package otelpgmq_test

import (
	"testing"

	"github.com/pgmqotel/pgmqotel/internal/testkit/readme"
	"github.com/pgmqotel/pgmqotel/otelpgmq"
)

// TestReadmeMetricsTableMatchesCode keeps the messaging rows of README.md's
// metrics table (messaging.*, pgmq.message.*; otelmetrics' test checks the
// others) in step with the instruments NewTracer creates.
func TestReadmeMetricsTableMatchesCode(t *testing.T) {
	rec := readme.NewRecorder()
	otelpgmq.NewTracer(otelpgmq.WithMeterProvider(rec))
	if n := len(rec.Instruments()); n != 7 {
		t.Errorf("NewTracer registered %d instruments, want 7: %v", n, rec.Instruments())
	}
	readme.CheckMetricsTable(t, "../docs/metrics.md", readme.TracingMetric, rec.Instruments())
}
