package otelmetrics

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

func newPool(t testing.TB, url string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestPoolUtilization(t *testing.T) {
	db := pgmqtest.New(t)
	pool := newPool(t, db.URL, 10)
	m, r := newTestMetrics(t, WithPool("", pool))
	name := PoolName(pool)
	if want := "/" + db.Name; !strings.HasSuffix(name, want) || !strings.Contains(name, ":") {
		t.Fatalf("pool name %q, want host:port%s", name, want)
	}
	poolAttr := attribute.String(AttrPoolName, name)
	used := attribute.String(AttrConnectionState, "used")
	idle := attribute.String(AttrConnectionState, "idle")

	ctx := context.Background()
	var held []*pgxpool.Conn
	for range 8 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}

	c := collect(t, r)
	if got := c.mustValue(t, MetricConnectionCount, poolAttr, used); got != 8 {
		t.Errorf("used = %v, want 8", got)
	}
	if got := c.mustValue(t, MetricConnectionMax, poolAttr); got != 10 {
		t.Errorf("max = %v, want 10", got)
	}
	util := c.mustValue(t, MetricConnectionUtil, poolAttr)
	if util < 0.7 || util > 1 {
		t.Errorf("utilization = %v, want in [0.7, 1]", util)
	}
	if util != 0.8 {
		t.Errorf("utilization = %v, want used/max = 0.8", util)
	}
	total := pool.Stat().TotalConns()
	if u, i := c.mustValue(t, MetricConnectionCount, poolAttr, used), c.mustValue(t, MetricConnectionCount, poolAttr, idle); int32(u+i) != total {
		t.Errorf("used %v + idle %v != total %d", u, i, total)
	}
	snap := m.Snapshot(ctx).Pools[name]
	if snap.Used != 8 || snap.Max != 10 || snap.Utilization != 0.8 {
		t.Errorf("snapshot = %+v", snap)
	}

	for _, h := range held {
		h.Release()
	}
	c = collect(t, r)
	if after := c.mustValue(t, MetricConnectionUtil, poolAttr); after >= util {
		t.Errorf("utilization after release = %v, want below %v", after, util)
	}
	if got := c.mustValue(t, MetricConnectionCount, poolAttr, idle); got != 8 {
		t.Errorf("idle after release = %v, want 8", got)
	}
	if _, ok := c.value(MetricConnectionIdleMin, poolAttr); ok {
		t.Error("idle.min reported for a pool without MinIdleConns")
	}
}

// A pool that has opened 2 of its 10 connections, both busy, is at 20 %.
func TestPoolUtilizationIsUsedOverMax(t *testing.T) {
	db := pgmqtest.New(t)
	pool := newPool(t, db.URL, 10)
	_, r := newTestMetrics(t, WithPool("orders-db", pool))
	ctx := context.Background()
	for range 2 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	c := collect(t, r)
	if got := c.mustValue(t, MetricConnectionUtil, attribute.String(AttrPoolName, "orders-db")); got != 0.2 {
		t.Fatalf("utilization = %v, want 0.2", got)
	}
}

func TestPoolNameHasNoPassword(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://app:s3cr3t-pass@db.example:6432/orders")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	name := PoolName(pool)
	if name != "db.example:6432/orders" {
		t.Fatalf("PoolName = %q", name)
	}
}

func TestPoolIdleMinReportedWhenConfigured(t *testing.T) {
	db := pgmqtest.New(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MinIdleConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, r := newTestMetrics(t, WithPool("p", pool))
	if got := collect(t, r).mustValue(t, MetricConnectionIdleMin, attribute.String(AttrPoolName, "p")); got != 2 {
		t.Fatalf("idle.min = %v, want 2", got)
	}
}
