package otelmetrics

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// The application's pool and the queue sampler both reach a PostgreSQL
// that admits TCP clients only over SSL with a client certificate
// (`hostssl ... cert`, `hostnossl ... reject`), with sslmode=verify-full:
// the sampler's own connection keeps the pool's TLS settings and its
// client certificate, and every session of either is encrypted. Under a
// name the server's certificate does not hold, both are refused: the
// pool's error and the sampler's carry the x509 hostname error, the
// sampler counts the failure (error.type connection) and reports no depth.
func TestPostgresTLSVerifyFull(t *testing.T) {
	cluster := pgcluster.Start(t, pgcluster.Options{TLS: &pgcluster.TLS{Names: []string{"localhost"}}})
	db := pgmqtest.NewAt(t, cluster.URL("")) // created through the cluster's socket
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "jobs", 3)
	client := cluster.CA().Client(t, "postgres")

	pool, err := pgxpool.New(ctx, cluster.TLSURL(db.Name, "postgres", "localhost", client))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if n := len(pool.Config().ConnConfig.Fallbacks); n != 0 {
		t.Fatalf("verify-full config has %d fallbacks", n)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pool, verify-full with a client certificate: %v", err)
	}
	h := setErrorHandler(t)
	_, r := newTestMetrics(t, WithPool("app", pool), WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1}))
	got := collect(t, r)
	if v := got.mustValue(t, MetricQueueDepth, queueAttr("jobs"), visible); v != 3 {
		t.Fatalf("jobs visible = %v, want 3", v)
	}
	if n := got.samplerErrors(); n != 0 {
		t.Fatalf("sampler errors over TLS: %v (%v)", got.errorTypes(), handled(h))
	}

	// Every TCP session of the database, the sampler's among them, is
	// encrypted and authenticated by the client certificate.
	rows, err := db.Pool.Query(ctx, `SELECT a.application_name, s.ssl, coalesce(s.client_dn, '')
		FROM pg_stat_activity AS a JOIN pg_stat_ssl AS s USING (pid)
		WHERE a.datname = $1 AND a.client_addr IS NOT NULL`, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	sawSampler := false
	n := 0
	for rows.Next() {
		var app, dn string
		var ssl bool
		if err := rows.Scan(&app, &ssl, &dn); err != nil {
			t.Fatal(err)
		}
		n++
		if !ssl || dn != "/CN=postgres" {
			t.Errorf("session %q: ssl %v, client_dn %q", app, ssl, dn)
		}
		sawSampler = sawSampler || app == queuesampler.AppName
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !sawSampler || n < 2 {
		t.Fatalf("%d TCP sessions, sampler's among them: %v", n, sawSampler)
	}

	// Connected as 127.0.0.1, a name the certificate does not hold.
	bad, err := pgxpool.New(ctx, cluster.TLSURL(db.Name, "postgres", "127.0.0.1", client))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bad.Close)
	var hostErr x509.HostnameError
	if err := bad.Ping(ctx); !errors.As(err, &hostErr) {
		t.Fatalf("pool under a mismatched name: %v, want an x509.HostnameError", err)
	}
	h = setErrorHandler(t)
	m, r := newTestMetrics(t, WithPool("bad", bad), WithQueueSampler(queuesampler.Config{Conn: bad.Config(), MinInterval: -1}))
	got = collect(t, r)
	if pts := got.points(MetricQueueDepth); len(pts) != 0 {
		t.Fatalf("depth reported through a refused connection: %v", pts)
	}
	if types := got.errorTypes(); types["connection"] != 1 || len(types) != 1 {
		t.Fatalf("error types under a mismatched name: %v, want connection 1", types)
	}
	last := sampler(m).Last()
	if last == nil || last.Op != queuesampler.OpConnect || !errors.As(last.Err, &hostErr) {
		t.Fatalf("sampler's last sample: %+v, want a connect failure carrying an x509.HostnameError", last)
	}
	if errs := handled(h); len(errs) != 1 || !strings.Contains(errs[0].Error(), "x509") {
		t.Fatalf("handled: %v, want one error naming the certificate check", errs)
	}
}
