package otelmetrics

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// setGlobalMeterProvider installs mp as the global MeterProvider until the
// test ends.
func setGlobalMeterProvider(t *testing.T, mp *sdkmetric.MeterProvider) {
	t.Helper()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(mp)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
}

// Issue 18: the limit New checks the queues against does not depend on
// whether the MeterProvider is given or global. With the global provider
// and a declared limit of 20,001, 1,001 queues (2,002 depth points) draw
// no warning; 10,001 queues do. Undeclared, the SDK's 2,000 is assumed.
// (The check is called with the queue count a sample found; the test
// below runs it on a real sample.)
func TestCardinalityLimitOfGlobalProvider(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithCardinalityLimit(20_001))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	setGlobalMeterProvider(t, mp)
	for _, tc := range []struct {
		name   string
		opts   []Option
		queues int
		warn   bool
	}{
		{"declared, 1,001 queues", []Option{WithDeclaredCardinalityLimit(20_001)}, 1001, false},
		{"declared, 10,000 queues", []Option{WithDeclaredCardinalityLimit(20_001)}, 10_000, false},
		{"declared, 10,001 queues", []Option{WithDeclaredCardinalityLimit(20_001)}, 10_001, true},
		{"declared no limit", []Option{WithDeclaredCardinalityLimit(0)}, 100_000, false},
		{"undeclared, 999 queues", nil, 999, false},
		{"undeclared, 1,001 queues", nil, 1001, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := setErrorHandler(t)
			c := cardinalityCheck{limit: cardinalityLimitOf(newConfig(tc.opts))}
			c.check(tc.queues)
			c.check(tc.queues) // once only
			if got := h.count(); got != map[bool]int{false: 0, true: 1}[tc.warn] {
				t.Fatalf("limit taken as %d: %d warnings at %d queues (%v), want warned %v", c.limit, got, tc.queues, h.errs, tc.warn)
			}
		})
	}
}

// With the global MeterProvider and its limit declared, a sample of more
// queues than the limit holds warns once, and one that fits does not.
func TestCardinalityWarningGlobalProvider(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for i := range 3 {
		if err := c.CreateQueue(ctx, fmt.Sprintf("gcard_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// 3 queues, 6 depth points: a limit of 7 holds them, 6 does not.
	for _, tc := range []struct {
		limit int
		warn  bool
	}{{7, false}, {6, true}} {
		h := setErrorHandler(t)
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(tc.limit))
		setGlobalMeterProvider(t, mp)
		m, err := New(WithQueueSampler(queuesampler.Config{Conn: db.Pool.Config(), MinInterval: -1}), WithDeclaredCardinalityLimit(tc.limit))
		if err != nil {
			t.Fatal(err)
		}
		collect(t, reader)
		warned := h.count() == 1 && strings.Contains(h.errs[0].Error(), fmt.Sprintf("cardinality limit of %d", tc.limit))
		if warned != tc.warn || h.count() > 1 {
			t.Errorf("limit %d: warned %v (%v), want %v", tc.limit, warned, h.errs, tc.warn)
		}
		_ = m.Close()
		_ = mp.Shutdown(ctx)
	}
}
