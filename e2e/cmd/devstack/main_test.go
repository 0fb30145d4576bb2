package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// A busy fixed port fails at once, naming the flag that set it.
func TestBusyPortNamesItsFlag(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	err = checkPorts([]portFlag{{"-otlp-grpc", freeAddr}, {"-prometheus", lis.Addr().String()}})
	if err == nil || !strings.Contains(err.Error(), "-prometheus "+lis.Addr().String()+" is not free") {
		t.Fatalf("checkPorts = %v, want the -prometheus address named", err)
	}
}

// plainDatabase is a fresh database without PGMQ, on the test server.
func plainDatabase(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	db := pgmqtest.New(t)
	ctx := context.Background()
	db.RemovePGMQ(t)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, db.URL
}

// installFile is PGMQ's SQL install file from PGMQ_SQL when set, else the
// project's compat schema, which installs the same way (one file, schema
// pgmq, pgmq.meta).
func installFile(t *testing.T) string {
	if f := os.Getenv("PGMQ_SQL"); f != "" {
		return f
	}
	f, err := filepath.Abs(filepath.Join("..", "..", "..", "pgmqclient", "pgmqtest", "compat.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// -pgmq-sql puts PGMQ into a plain PostgreSQL once; a second start finds
// it there and applies nothing; a broken file applies nothing at all.
func TestPGMQSQLInstallsOnce(t *testing.T) {
	ctx := context.Background()
	conn, _ := plainDatabase(t)

	broken := filepath.Join(t.TempDir(), "broken.sql")
	if err := os.WriteFile(broken, []byte("CREATE SCHEMA pgmq; CREATE TABLE pgmq.meta (x int); SELECT pgmq.nonsense("), 0o644); err != nil {
		t.Fatal(err)
	}
	if applied, _, err := installPGMQ(ctx, conn, broken, "-pgmq-sql"); err == nil || applied {
		t.Fatalf("broken file: applied %v, err %v", applied, err)
	}
	if st, err := checkPGMQ(ctx, conn); err != nil || st.Installed {
		t.Fatalf("after a broken file: %+v %v, want nothing applied", st, err)
	}

	file := installFile(t)
	applied, st, err := installPGMQ(ctx, conn, file, "-pgmq-sql")
	if err != nil || !applied || !st.Installed {
		t.Fatalf("first install from %s: applied %v, %+v, %v", file, applied, st, err)
	}
	applied, st, err = installPGMQ(ctx, conn, file, "-pgmq-sql")
	if err != nil || applied || !st.Installed {
		t.Fatalf("second install: applied %v, %+v, %v; want not applied, installed", applied, st, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pgmq.create('after_install')"); err != nil {
		t.Fatalf("PGMQ does not work after the install: %v", err)
	}
}

// With -orchestrator and no PGMQ, the start stops plainly, saying how to
// install PGMQ, instead of reporting the stack up.
func TestMissingPGMQStopsTheStart(t *testing.T) {
	_, url := plainDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := preparePGMQ(ctx, url, "", true, false)
	if err == nil || !strings.Contains(err.Error(), "PGMQ is not installed in database") ||
		!strings.Contains(err.Error(), "-pgmq-sql path/to/pgmq.sql") {
		t.Fatalf("preparePGMQ = %v", err)
	}
	if _, err := preparePGMQ(ctx, url, installFile(t), true, false); err != nil {
		t.Fatalf("with -pgmq-sql: %v", err)
	}
	if _, err := preparePGMQ(ctx, url, "", true, false); err != nil {
		t.Fatalf("after the install: %v", err)
	}
}

// The Collector is kept in the cache, keyed by its sources: the same
// sources find the binary, changed ones need a new build.
func TestCollectorCacheKey(t *testing.T) {
	src := t.TempDir()
	for _, name := range collectorSources {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k1, err := sourceKey(src)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := sourceKey(src); k != k1 {
		t.Fatalf("key not stable: %s then %s", k1, k)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err := cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cached := filepath.Join(dir, "otelcol-"+k1)
	if err := os.WriteFile(cached, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	var said []string
	bin, err := cachedCollector(context.Background(), src, func(f string, a ...any) { said = append(said, f) })
	if err != nil || bin != cached || len(said) != 1 || !strings.Contains(said[0], "cached") {
		t.Fatalf("cachedCollector = %s, %v, said %q; want the cached binary", bin, err, said)
	}
	if err := os.WriteFile(filepath.Join(src, "cmd/otelcol/main.go"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k2, _ := sourceKey(src); k2 == k1 {
		t.Fatal("a changed source kept the key")
	}
}
