package otelmetrics

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/internal/testkit/readme"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// TestReadmeMetricsTableMatchesCode keeps README.md's metrics table in step
// with the instruments New creates: same names, instrument kinds and units
// (the messaging rows are otelpgmq's, checked there).
func TestReadmeMetricsTableMatchesCode(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none") // never connects
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rec := readme.NewRecorder()
	m, err := New(WithMeterProvider(rec), WithPool("p", pool), WithQueueSampler(queuesampler.Config{Conn: pool.Config()}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	readme.CheckMetricsTable(t, "../docs/metrics.md", func(name string) bool { return !readme.TracingMetric(name) }, rec.Instruments())
}
