package pgmqreceiver

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// timeZero is a fixed timestamp for points recorded by hand.
var timeZero = time.Unix(1_700_000_000, 0)

// TestMain fails the package's tests if any goroutine is still running once
// they have all finished: shutting a receiver down closes its samplers'
// connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
