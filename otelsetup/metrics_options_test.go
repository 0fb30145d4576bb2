package otelsetup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// NewMeterProvider keeps more than the SDK's 2,000 points per instrument
// by default, so 1,500 queues' depths (3,000 points) do not overflow.
func TestNewMeterProviderCardinalityFitsQueues(t *testing.T) {
	cleanEnv(t)
	t.Setenv(envMetricsExporter, "none")
	reader := sdkmetric.NewManualReader()
	p := newProvider(t, WithReader(reader))
	g, err := p.Meter("test").Int64ObservableGauge(otelmetrics.MetricQueueDepth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Meter("test").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i := range 1500 {
			for _, st := range []string{"visible", "invisible"} {
				o.ObserveInt64(g, 1, metric.WithAttributes(
					attribute.String(otelmetrics.AttrDestinationName, fmt.Sprintf("q%d", i)),
					attribute.String(otelmetrics.AttrMessageState, st)))
			}
		}
		return nil
	}, g); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	pts := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Gauge[int64]).DataPoints
	for _, dp := range pts {
		if dp.Attributes.HasValue("otel.metric.overflow") {
			t.Fatalf("overflow point among %d points", len(pts))
		}
	}
	if len(pts) != 3000 {
		t.Fatalf("%d points, want 3000", len(pts))
	}
}

// Issue 18: with the provider installed as the global one, its
// MetricsOptions declare its cardinality limit to otelmetrics, which warns
// exactly when the sampled queues need more points than the limit keeps.
func TestMetricsOptionsDeclareTheLimit(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for i := range 3 {
		if err := c.CreateQueue(ctx, fmt.Sprintf("limit_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// 3 queues, 6 depth points: the SDK keeps limit-1 attribute sets.
	for _, tc := range []struct {
		limit *int
		warn  bool
	}{{ptr(6), true}, {ptr(7), false}, {nil, false}} {
		cleanEnv(t)
		t.Setenv(envMetricsExporter, "none")
		handled := captureHandled(t)
		reader := sdkmetric.NewManualReader()
		opts := []MeterProviderOption{WithReader(reader)}
		if tc.limit != nil {
			opts = append(opts, WithCardinalityLimit(*tc.limit))
		}
		mp := newProvider(t, opts...)
		prev := otel.GetMeterProvider()
		otel.SetMeterProvider(mp)
		m, err := otelmetrics.New(append(mp.MetricsOptions(), otelmetrics.WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}))...)
		if err != nil {
			t.Fatal(err)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		var warnings []string
		for _, err := range handled() {
			if strings.Contains(err.Error(), "cardinality limit") {
				warnings = append(warnings, err.Error())
			}
		}
		if (len(warnings) == 1) != tc.warn || len(warnings) > 1 {
			t.Errorf("limit %v: warnings %q, want warned %v", mp.limit, warnings, tc.warn)
		}
		_ = m.Close()
		otel.SetMeterProvider(prev)
	}
}

func ptr[T any](v T) *T { return &v }

// MetricsOptions give otelmetrics the export interval, from which the
// election lease's TTL is derived (three intervals plus the sample
// timeout), and the export health: once two exports in a row have
// failed, the leader marks its lease unhealthy at its next renewal.
func TestMetricsOptionsReachTheElection(t *testing.T) {
	cleanEnv(t)
	captureHandled(t)
	db := pgmqtest.New(t)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "elected"); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := newProvider(t, WithReader(reader), WithMetricExportInterval(time.Hour),
		WithOTLPMetricGRPCOptions(otlpmetricgrpc.WithEndpoint(deadAddr(t)), otlpmetricgrpc.WithInsecure(),
			otlpmetricgrpc.WithTimeout(200*time.Millisecond), otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false})))
	m, err := otelmetrics.New(append(mp.MetricsOptions(),
		otelmetrics.WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1, SampleTimeout: time.Second}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lease := func() (ttl time.Duration, healthy bool) {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil { // elects, or renews
			t.Fatal(err)
		}
		var left float64
		if err := db.Pool.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - now()), healthy FROM pgmqotel.election_lease`).Scan(&left, &healthy); err != nil {
			t.Fatal(err)
		}
		return time.Duration(left * float64(time.Second)), healthy
	}
	if ttl, healthy := lease(); ttl < 3*time.Hour || !healthy {
		t.Fatalf("lease for %v, healthy %v; want three export intervals (3 h) and more, healthy", ttl, healthy)
	}
	for range 2 {
		_ = mp.ForceFlush(ctx) // fails: nothing listens
	}
	if mp.ExportHealthy() {
		t.Fatal("exports healthy after two failures")
	}
	if _, healthy := lease(); healthy {
		t.Fatal("the lease is still marked healthy after the exports failed")
	}
}
