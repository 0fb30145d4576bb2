package pgcluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
)

func queryInt(t *testing.T, url, sql string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func exec(t *testing.T, url string, sqls ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// waitLive polls the statistics of table t until n_live_tup reaches want.
func waitLive(t *testing.T, url string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := queryInt(t, url, "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 't'")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("n_live_tup = %d, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashStandbyPromote walks a cluster through the states the depth
// sampler must survive, and checks the fact each rests on: the live-row
// statistics are gone after a crash and on a standby, while the rows are not.
func TestCrashStandbyPromote(t *testing.T) {
	c := pgcluster.Start(t, pgcluster.Options{Settings: map[string]string{"idle_session_timeout": "0"}})
	url := c.URL("")
	exec(t, url, "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 1000)")
	waitLive(t, url, 1000)

	c.Restart(t, "immediate")
	if got := queryInt(t, url, "SELECT count(*) FROM t"); got != 1000 {
		t.Fatalf("after crash restart: count(*) = %d, want 1000", got)
	}
	if got := queryInt(t, url, "SELECT coalesce(max(n_live_tup), 0) FROM pg_stat_user_tables WHERE relname = 't'"); got != 0 {
		t.Fatalf("after crash restart: n_live_tup = %d, want 0 (statistics reset)", got)
	}

	s := c.Standby(t, pgcluster.Options{})
	exec(t, url, "INSERT INTO t SELECT generate_series(1, 500)")
	s.WaitReplayed(t, c)
	surl := s.URL("")
	if got := queryInt(t, surl, "SELECT pg_is_in_recovery()::int"); got != 1 {
		t.Fatalf("standby: pg_is_in_recovery = %d, want 1", got)
	}
	if got := queryInt(t, surl, "SELECT count(*) FROM t"); got != 1500 {
		t.Fatalf("standby: count(*) = %d, want 1500", got)
	}

	c.Stop(t, "fast")
	s.Promote(t)
	exec(t, surl, "INSERT INTO t VALUES (0)")
	if got := queryInt(t, surl, "SELECT count(*) FROM t"); got != 1501 {
		t.Fatalf("promoted: count(*) = %d, want 1501", got)
	}
}

// A cluster started with TLS admits TCP clients only over SSL with a
// client certificate the CA signed, and a verify-full client refuses its
// certificate under a name it does not hold.
func TestTLSClusterAdmitsOnlyCertificates(t *testing.T) {
	c := pgcluster.Start(t, pgcluster.Options{TLS: &pgcluster.TLS{}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := c.CA().Client(t, "postgres")

	conn, err := pgx.Connect(ctx, c.TLSURL("", "postgres", "localhost", client))
	if err != nil {
		t.Fatalf("verify-full with a client certificate: %v", err)
	}
	var ssl bool
	var dn string
	if err := conn.QueryRow(ctx, "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &dn); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if !ssl || dn != "/CN=postgres" {
		t.Fatalf("ssl %v, client_dn %q; want true, /CN=postgres", ssl, dn)
	}

	plain := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", c.Port)
	for name, dsn := range map[string]string{
		"hostname mismatch":         c.TLSURL("", "postgres", "127.0.0.1", client),
		"plain text":                plain + "?sslmode=disable",
		"prefer, no certificate":    plain + "?sslmode=prefer",
		"certificate of a stranger": c.TLSURL("", "postgres", "localhost", pgcluster.NewCA(t).Client(t, "postgres")),
	} {
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Close(ctx)
			t.Errorf("%s: connected", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// The administration socket still works.
	if got := queryInt(t, c.URL(""), "SELECT 1"); got != 1 {
		t.Fatal(got)
	}
}
