package main

import (
	"testing"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// TestMainRuns runs the example whole against a fresh database, with the
// OTLP exporter off (no collector here).
func TestMainRuns(t *testing.T) {
	db := pgmqtest.New(t)
	t.Setenv("DATABASE_URL", db.URL)
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	main()
}
