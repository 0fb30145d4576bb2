package otelmetrics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// monitorRole creates a login role that holds nothing but pg_monitor (and
// CONNECT on the test database), and returns a URL that connects as it.
// Roles are cluster-wide, so the name is unique to the run and the role is
// dropped when the test ends, before the database is.
func monitorRole(t *testing.T, db *pgmqtest.DB) string {
	t.Helper()
	ctx := context.Background()
	role := "pgmqotel_monitor_" + randomSuffix(t)
	ident := pgx.Identifier{role}.Sanitize()
	dbIdent := pgx.Identifier{db.Name}.Sanitize()
	for _, sql := range []string{
		"CREATE ROLE " + ident + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT",
		"GRANT pg_monitor TO " + ident,
		"GRANT CONNECT ON DATABASE " + dbIdent + " TO " + ident,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Its sessions first (the test closed them, but be sure), then
		// what it holds, then the role.
		for _, sql := range []string{
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'",
			"REVOKE CONNECT ON DATABASE " + dbIdent + " FROM " + ident,
			"DROP OWNED BY " + ident,
			"DROP ROLE " + ident,
		} {
			if _, err := db.Pool.Exec(ctx, sql); err != nil {
				t.Errorf("cleanup: %s: %v", sql, err)
			}
		}
	})
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	return hex.EncodeToString(b)
}

// Queue sampling needs no more than pg_monitor, to which PGMQ grants SELECT
// on its tables and sequences: the sampler can run under a monitoring role
// that could not touch a message.
func TestQueueSamplingAsPgMonitorOnly(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, q := range []string{"orders", "Emails"} {
		if err := c.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, c, "orders", 4)
	sendN(t, c, "Emails", 1)
	if _, err := c.Read(ctx, "orders", time.Minute, 1); err != nil {
		t.Fatal(err)
	}

	roleURL := monitorRole(t, db)
	u, _ := url.Parse(roleURL)
	pool, err := pgxpool.New(ctx, roleURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// The role is least-privileged: no superuser, and no write to a queue.
	var super bool
	if err := pool.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if super {
		t.Fatal("the monitoring role is a superuser")
	}
	for _, sql := range []string{
		"DELETE FROM pgmq.q_orders",
		"INSERT INTO pgmq.q_orders (vt, message) VALUES (now(), '{}')",
		"UPDATE pgmq.q_orders SET vt = now()",
		"SELECT pgmq.send('orders', '{}'::jsonb)",
		"SELECT pgmq.drop_queue('orders')",
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the monitoring role: %v, want insufficient_privilege (42501)", sql, err)
		}
	}
	if n, err := c.QueueSize(ctx, "orders"); err != nil || n != 4 {
		t.Fatalf("orders after the refused writes: %d, %v; want 4", n, err)
	}

	// Without the election's table, which the role may not create, the
	// election fails loudly, typed by the refusal's SQLSTATE, naming the
	// way out; no queue point is made up.
	h := setErrorHandler(t)
	_, r := newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1}))
	got := collect(t, r)
	if pts := got.points(MetricQueueDepth); len(pts) != 0 {
		t.Fatalf("queue points without an election table: %v", pts)
	}
	if types := got.errorTypes(); types["42501"] != 1 {
		t.Fatalf("error types without an election table: %v, want 42501", types)
	}
	if errs := handled(h); len(errs) != 1 || !strings.Contains(errs[0].Error(), "ElectionDDL") {
		t.Fatalf("handled without an election table: %v, want one error naming ElectionDDL", errs)
	}

	// The documented one-time setup: the table, and the role's grant.
	for _, sql := range []string{queuesampler.ElectionDDL, queuesampler.ElectionGrantSQL(u.User.Username())} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// Every queue, discovered, and a named one, with and without election.
	for _, sc := range []queuesampler.Config{
		{Conn: pool.Config(), MinInterval: -1},
		{Conn: pool.Config(), MinInterval: -1, Depth: queuedepth.Options{Queues: []string{"orders"}}, NoElection: true},
	} {
		h := setErrorHandler(t)
		m, r := newTestMetrics(t, WithQueueSampler(sc), WithPool("monitor", pool))
		got := collect(t, r)
		if n := got.samplerErrors(); n != 0 {
			t.Fatalf("sampler errors as the monitoring role: %v (%v)", got.errorTypes(), handled(h))
		}
		if v, w := got.mustValue(t, MetricQueueDepth, queueAttr("orders"), visible), got.mustValue(t, MetricQueueDepth, queueAttr("orders"), invisible); v != 3 || w != 1 {
			t.Fatalf("orders visible %v invisible %v, want 3 and 1", v, w)
		}
		if v := got.mustValue(t, MetricQueueSent, queueAttr("orders")); v != 4 {
			t.Fatalf("orders sent = %v, want 4", v)
		}
		if v := got.mustValue(t, MetricQueueOldestAge, queueAttr("orders")); v < 0 {
			t.Fatalf("orders oldest age = %v", v)
		}
		if len(sc.Depth.Queues) == 0 {
			if v := got.mustValue(t, MetricQueueDepth, queueAttr("Emails"), visible); v != 1 {
				t.Fatalf("Emails = %v, want 1", v)
			}
		}
		s := m.Snapshot(ctx)
		if len(s.Databases) == 0 || !s.Databases[0].Healthy || s.Databases[0].Role != queuesampler.RoleSampler {
			t.Fatalf("snapshot as the monitoring role: %+v", s.Databases)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// The control: without pg_monitor the same role cannot sample, and the
	// refusal is counted by its SQLSTATE with no points made up.
	if _, err := db.Pool.Exec(ctx, "REVOKE pg_monitor FROM "+pgx.Identifier{u.User.Username()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	setErrorHandler(t)
	_, r = newTestMetrics(t, WithQueueSampler(queuesampler.Config{Conn: pool.Config(), MinInterval: -1}))
	got = collect(t, r)
	if pts := got.points(MetricQueueDepth); len(pts) != 0 {
		t.Fatalf("queue points without pg_monitor: %v", pts)
	}
	if types := got.errorTypes(); types["42501"] != 1 {
		t.Fatalf("error types without pg_monitor: %v, want 42501 (insufficient_privilege)", types)
	}
}
