package otelmetrics

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// clusterDB is a PGMQ database in a PostgreSQL cluster of its own.
type clusterDB struct {
	cluster *pgcluster.Cluster
	db      *pgmqtest.DB
	client  *pgmqclient.Client
}

func newClusterDB(t *testing.T) clusterDB {
	t.Helper()
	c := pgcluster.Start(t, pgcluster.Options{})
	db := pgmqtest.NewAt(t, c.URL(""))
	return clusterDB{cluster: c, db: db, client: pgmqclient.New(db.Pool)}
}

// server are the attributes that tell cdb's points apart.
func (cdb clusterDB) server(t *testing.T) []attribute.KeyValue {
	t.Helper()
	u, err := url.Parse(cdb.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return []attribute.KeyValue{attribute.String("server.address", u.Hostname()),
		attribute.Int("server.port", port), attribute.String("db.namespace", cdb.db.Name)}
}

// counts returns count(*) of queue's messages, visible and invisible,
// read in one statement on a connection of its own (the pool's may have
// died with a restart).
func (cdb clusterDB) counts(t *testing.T, queue string) (visible, invisible int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cdb.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx,
		`SELECT count(*) FILTER (WHERE vt <= clock_timestamp()), count(*) FILTER (WHERE vt > clock_timestamp()) FROM pgmq.q_`+queue,
	).Scan(&visible, &invisible); err != nil {
		t.Fatal(err)
	}
	return visible, invisible
}

// mustMatchCounts fails unless got has one visible and one invisible
// depth point of queue for cdb, equal to count(*) in cdb.
func (cdb clusterDB) mustMatchCounts(t *testing.T, got collected, queue string) {
	t.Helper()
	v, i := cdb.counts(t, queue)
	attrs := append(cdb.server(t), queueAttr(queue))
	if gv, gi := got.mustValue(t, MetricQueueDepth, append(attrs, visible)...), got.mustValue(t, MetricQueueDepth, append(attrs, invisible)...); gv != float64(v) || gi != float64(i) {
		t.Fatalf("%s on port %d: visible %v invisible %v, count(*) says %d and %d", queue, cdb.cluster.Port, gv, gi, v, i)
	}
}

// Two PostgreSQL clusters each hold a queue named orders. One Metrics
// samples both: each database's queue is its own series (server.address,
// server.port, db.namespace), equal to count(*) in that database. When
// one cluster stops, the other keeps reporting its exact depth, the
// stopped one's points are left out and its failure is counted under its
// own attributes; when it is back, it reports again.
func TestTwoClustersSameQueueName(t *testing.T) {
	setErrorHandler(t)
	ctx := context.Background()
	a, b := newClusterDB(t), newClusterDB(t)
	for _, cdb := range []clusterDB{a, b} {
		if err := cdb.client.CreateQueue(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, a.client, "orders", 3)
	sendN(t, b.client, "orders", 7)
	if msgs, err := b.client.Read(ctx, "orders", time.Hour, 2); err != nil || len(msgs) != 2 {
		t.Fatalf("read: %d messages, %v", len(msgs), err)
	}
	cfg := func(cdb clusterDB) queuesampler.Config {
		return queuesampler.Config{Conn: cdb.db.Pool.Config(), MinInterval: -1}
	}
	_, r := newTestMetrics(t, WithQueueSampler(cfg(a)), WithQueueSampler(cfg(b)))

	got := collect(t, r)
	a.mustMatchCounts(t, got, "orders")
	b.mustMatchCounts(t, got, "orders")
	for _, state := range []attribute.KeyValue{visible, invisible} {
		n := 0
		for _, p := range got.points(MetricQueueDepth) {
			if v, _ := p.attrs.Value(AttrDestinationName); v.AsString() == "orders" {
				if s, _ := p.attrs.Value(AttrMessageState); s == state.Value {
					n++
				}
			}
		}
		if n != 2 {
			t.Fatalf("%d %s series of orders, want one per database: %v", n, state.Value.AsString(), got.points(MetricQueueDepth))
		}
	}
	for _, cdb := range []clusterDB{a, b} {
		if v := got.mustValue(t, MetricQueueSent, append(cdb.server(t), queueAttr("orders"))...); v != map[int]float64{a.cluster.Port: 3, b.cluster.Port: 7}[cdb.cluster.Port] {
			t.Fatalf("sent on port %d = %v", cdb.cluster.Port, v)
		}
	}

	b.cluster.Stop(t, "immediate")
	sendN(t, a.client, "orders", 4)
	got = collect(t, r)
	a.mustMatchCounts(t, got, "orders")
	if v, ok := got.value(MetricQueueDepth, b.server(t)...); ok {
		t.Fatalf("the stopped cluster still reports a depth: %v", v)
	}
	if v := got.mustValue(t, MetricSamplerErrors, append(b.server(t), attribute.String(AttrErrorType, "connection"))...); v < 1 {
		t.Fatalf("stopped cluster's connection errors = %v", v)
	}
	if v, ok := got.value(MetricSamplerErrors, a.server(t)...); ok {
		t.Fatalf("the running cluster counts %v sampler errors", v)
	}

	b.cluster.Start(t)
	eventually(t, time.Minute, "the restarted cluster's depth", func() bool {
		_, ok := collect(t, r).value(MetricQueueDepth, append(b.server(t), queueAttr("orders"))...)
		return ok
	})
	got = collect(t, r)
	a.mustMatchCounts(t, got, "orders")
	b.mustMatchCounts(t, got, "orders")
}
