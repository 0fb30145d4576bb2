package pgmqreceiver

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type() != metadata.Type || f.Type().String() != "pgmq" {
		t.Fatalf("type %v", f.Type())
	}
	if f.MetricsStability() != component.StabilityLevelAlpha {
		t.Fatalf("stability %v", f.MetricsStability())
	}
	cfg := f.CreateDefaultConfig()
	if err := componenttest.CheckConfigStruct(cfg); err != nil {
		t.Fatal(err)
	}
	// The default has no database, which must be given.
	if err := confmap.Validate(cfg); err == nil || !strings.Contains(err.Error(), "databases:") {
		t.Fatalf("default config: %v", err)
	}
}

// Creating, starting and shutting down the receiver opens no connection
// before the first scrape and leaves nothing running; a database that
// cannot be reached does not stop the start.
func TestCreateStartShutdown(t *testing.T) {
	cfg := testConfig(closedDSN(t))
	cfg.InitialDelay = 0
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A configuration of another component type is refused.
func TestCreateWithWrongConfig(t *testing.T) {
	type other struct{}
	if _, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), &other{}, consumertest.NewNop()); err == nil {
		t.Fatal("accepted a foreign configuration")
	}
}
