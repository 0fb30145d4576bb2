package otelmetrics

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is still running once
// they have all finished: every pool, sampler connection, exporter and
// reader a test starts must be stopped by Close and Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
