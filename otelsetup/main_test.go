package otelsetup

import (
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/grpclog"
)

// TestMain fails the package's tests if any goroutine is still running once
// they have all finished: every exporter, reader, batcher and server a
// test starts must be stopped by Shutdown.
//
// It also routes gRPC's log, at every severity, through grpcLog, so the
// secrets test can read what gRPC logged while exports failed. gRPC's
// logger may only be replaced before gRPC is first used, hence here.
// Errors still reach stderr, as with gRPC's default logger.
func TestMain(m *testing.M) {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(grpcLog, io.Discard, os.Stderr, 99))
	goleak.VerifyTestMain(m)
}

// grpcLog keeps the most recent gRPC log output.
var grpcLog = &boundedLog{limit: 4 << 20}

// boundedLog is an io.Writer keeping the last limit bytes written.
type boundedLog struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (b *boundedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (b *boundedLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
