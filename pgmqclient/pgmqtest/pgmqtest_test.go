package pgmqtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// dbExists asks the server whether a database is there.
func dbExists(t *testing.T, name string) bool {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pgmqtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestNewCreatesDatabaseWithPGMQAndDropsIt(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		db := pgmqtest.New(t)
		name = db.Name
		if !strings.HasPrefix(db.Name, "pgmqtest_") || !strings.Contains(db.URL, db.Name) {
			t.Errorf("Name %q, URL %q", db.Name, db.URL)
		}
		switch db.Install {
		case pgmqtest.InstallExtension, pgmqtest.InstallSQLFile, pgmqtest.InstallCompat:
		default:
			t.Errorf("Install = %q", db.Install)
		}
		ctx := t.Context()
		var current string
		if err := db.Pool.QueryRow(ctx, `SELECT current_database()`).Scan(&current); err != nil || current != db.Name {
			t.Fatalf("pool is on %q (%v), want %q", current, err, db.Name)
		}
		// The database starts empty: PGMQ and no queue.
		var queues int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.list_queues()`).Scan(&queues); err != nil || queues != 0 {
			t.Errorf("queues in a fresh database: %d, %v", queues, err)
		}
		// A connection the test forgets to close does not keep it alive.
		conn, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn
		if !dbExists(t, name) {
			t.Fatal("database missing while the test runs")
		}
	})
	if name == "" {
		t.Skip("inner test skipped")
	}
	if dbExists(t, name) {
		t.Errorf("database %s still exists after the test", name)
	}
}

// The compat schema provides every function pgmqclient calls, with PGMQ's
// argument and result names.
func TestCompatSchemaShape(t *testing.T) {
	t.Parallel()
	db := pgmqtest.New(t)
	if db.Install != pgmqtest.InstallCompat {
		t.Skipf("PGMQ installed by %s; this checks the compat schema", db.Install)
	}
	ctx := t.Context()
	for _, sig := range []string{
		"pgmq.create(text)", "pgmq.create_unlogged(text)", "pgmq.drop_queue(text)", "pgmq.purge_queue(text)",
		"pgmq.list_queues()",
		"pgmq.send(text,jsonb)", "pgmq.send(text,jsonb,integer)", "pgmq.send(text,jsonb,jsonb)", "pgmq.send(text,jsonb,jsonb,integer)",
		"pgmq.send_batch(text,jsonb[])", "pgmq.send_batch(text,jsonb[],integer)",
		"pgmq.send_batch(text,jsonb[],jsonb[])", "pgmq.send_batch(text,jsonb[],jsonb[],integer)",
		"pgmq.read(text,integer,integer,jsonb)", "pgmq.read_with_poll(text,integer,integer,integer,integer,jsonb)",
		"pgmq.pop(text,integer)", "pgmq.delete(text,bigint)", "pgmq.delete(text,bigint[])",
		"pgmq.archive(text,bigint)", "pgmq.archive(text,bigint[])", "pgmq.set_vt(text,bigint,integer)",
		"pgmq.metrics(text)", "pgmq.metrics_all()",
	} {
		var ok bool
		if err := db.Pool.QueryRow(ctx, `SELECT to_regprocedure($1) IS NOT NULL`, sig).Scan(&ok); err != nil || !ok {
			t.Errorf("%s missing (%v)", sig, err)
		}
	}
	for typ, want := range map[string]string{
		"message_record": "msg_id,read_ct,enqueued_at,last_read_at,vt,message,headers",
		"metrics_result": "queue_name,queue_length,newest_msg_age_sec,oldest_msg_age_sec,total_messages,scrape_time,queue_visible_length",
		"queue_record":   "queue_name,is_partitioned,is_unlogged,created_at",
	} {
		var got string
		err := db.Pool.QueryRow(ctx, `SELECT string_agg(a.attname, ',' ORDER BY a.attnum)
			FROM pg_attribute AS a JOIN pg_type AS t ON a.attrelid = t.typrelid
			WHERE t.typname = $1 AND t.typnamespace = 'pgmq'::regnamespace AND a.attnum > 0`, typ).Scan(&got)
		if err != nil || got != want {
			t.Errorf("pgmq.%s = (%s) %v, want (%s)", typ, got, err, want)
		}
	}
	// Names PGMQ refuses, and the rest of the PGMQ behaviour around them.
	for _, bad := range []string{strings.Repeat("x", 48), "a$b", "a;b", "a--b", "a'b"} {
		if _, err := db.Pool.Exec(ctx, `SELECT pgmq.create($1)`, bad); err == nil {
			t.Errorf("pgmq.create(%q) succeeded", bad)
		}
	}
	if _, err := db.Pool.Exec(ctx, `SELECT pgmq.create('Watched')`); err != nil {
		t.Fatal(err)
	}
	var grants int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (VALUES ('pgmq.q_watched'), ('pgmq.a_watched'), ('pgmq.q_watched_msg_id_seq'), ('pgmq.meta')) AS v(rel)
		WHERE has_table_privilege('pg_monitor', rel, 'SELECT')`).Scan(&grants); err != nil || grants != 4 {
		t.Errorf("pg_monitor can read %d of 4 relations (%v)", grants, err)
	}
	var indexed bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'pgmq'
		AND tablename = 'q_watched' AND indexdef LIKE '%(vt)%')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("no vt index on pgmq.q_watched (%v)", err)
	}
}

// PGMQ_SQL names an install script; psql meta-commands in it are ignored.
func TestInstallFromSQLFile(t *testing.T) {
	script, err := os.ReadFile("compat.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pgmq.sql")
	body := "\\echo Use \"CREATE EXTENSION pgmq\" to load this file. \\quit\n" + string(script)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGMQ_SQL", path)
	db := pgmqtest.New(t)
	if db.Install != pgmqtest.InstallSQLFile && db.Install != pgmqtest.InstallExtension {
		t.Errorf("Install = %q, want sql-file", db.Install)
	}
}

// A broken script is passed over for the compat schema, leaving nothing
// half-installed.
func TestBrokenSQLFileFallsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.sql")
	if err := os.WriteFile(path, []byte("CREATE SCHEMA pgmq; CREATE TABLE pgmq.meta (x int); SELECT no_such_function();"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGMQ_SQL", path)
	db := pgmqtest.New(t)
	if db.Install != pgmqtest.InstallCompat && db.Install != pgmqtest.InstallExtension {
		t.Errorf("Install = %q, want compat", db.Install)
	}
	var n int
	if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pgmq.list_queues()`).Scan(&n); err != nil {
		t.Errorf("PGMQ unusable after the fallback: %v", err)
	}
}

// fakeTB records how New gives up on an unreachable server.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUnreachableServer(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5")
	run := func(ci string) *fakeTB {
		t.Setenv("CI", ci)
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			pgmqtest.New(f)
		}()
		<-done
		return f
	}
	if f := run(""); f.skip == "" || f.fatal != "" || !strings.Contains(f.skip, "pg_ctlcluster") {
		t.Errorf("without CI: skip %q, fatal %q; want a skip saying how to start PostgreSQL", f.skip, f.fatal)
	}
	if f := run("true"); f.fatal == "" || f.skip != "" || !strings.Contains(f.fatal, "127.0.0.1:1") {
		t.Errorf("with CI: skip %q, fatal %q; want a failure", f.skip, f.fatal)
	}
}

func TestServerURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	if got := pgmqtest.ServerURL(); got != pgmqtest.DefaultURL {
		t.Errorf("ServerURL() = %q, want the default", got)
	}
	t.Setenv("DATABASE_URL", "postgres://me@db:6543/x")
	if got := pgmqtest.ServerURL(); got != "postgres://me@db:6543/x" {
		t.Errorf("ServerURL() = %q", got)
	}
}

// New works for benchmarks too.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		db := pgmqtest.New(b)
		if err := db.Pool.Ping(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
