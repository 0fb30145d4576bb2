package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireServerPrograms skips the test where initdb and postgres are not
// installed, except under CI, where they are.
func requireServerPrograms(t *testing.T) {
	t.Helper()
	if _, err := pgBinDir(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// startThrowaway starts a throwaway cluster logging into a new directory
// and stops it at the end of the test.
func startThrowaway(t *testing.T, ctx context.Context) (*pgServer, string) {
	t.Helper()
	requireServerPrograms(t)
	logDir := t.TempDir()
	s, err := startPGServer(ctx, logDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, logDir
}

// The throwaway cluster: a server of its own on a free 127.0.0.1 port, no
// Unix socket, PGMQ put in from what is at hand (the extension where the
// server has it, else the project's compat schema, named as not PGMQ), and
// nothing left behind after stop: no server on the port, no data
// directory, the log kept.
func TestThrowawayClusterRunsTheDemoDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, logDir := startThrowaway(t, ctx)
	if s.URL != "postgres://postgres@127.0.0.1:"+strconv.Itoa(s.Port)+"/postgres?sslmode=disable" {
		t.Errorf("URL %s", s.URL)
	}
	conn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	var listen, sockets string
	if err := conn.QueryRow(ctx, "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')").Scan(&listen, &sockets); err != nil {
		t.Fatal(err)
	}
	ext, err := extensionAvailable(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" || sockets != "" {
		t.Errorf("listen_addresses %q, unix_socket_directories %q: want 127.0.0.1 and none", listen, sockets)
	}

	state, err := preparePGMQ(ctx, s.URL, "", true, true)
	switch {
	case err != nil:
		t.Fatal(err)
	case ext && !strings.HasPrefix(state.How, "extension "):
		t.Errorf("the server has the pgmq extension, but PGMQ came as %q", state.How)
	case !ext && state.How != compatHow:
		t.Errorf("no extension and no file: PGMQ came as %q, want %q", state.How, compatHow)
	}
	// A second start (same database) finds it and installs nothing.
	again, err := preparePGMQ(ctx, s.URL, "", true, true)
	if err != nil || again != state {
		t.Errorf("second prepare: %+v, %v; want %+v", again, err, state)
	}
	conn, err = pgx.Connect(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pgmq.create('demo'); SELECT pgmq.send('demo', '{}')"); err != nil {
		t.Errorf("PGMQ does not work: %v", err)
	}
	conn.Close(ctx)

	if err := s.stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on port %d after stop", s.Port)
	}
	if _, err := os.Stat(s.home); !os.IsNotExist(err) {
		t.Errorf("data directory %s still there after stop (%v)", s.home, err)
	}
	if b, err := os.ReadFile(filepath.Join(logDir, "postgres.log")); err != nil || !strings.Contains(string(b), "database system is shut down") {
		t.Errorf("server log not kept, or no clean shutdown in it (%v):\n%s", err, b)
	}
}

// -pgmq-sql comes first in a throwaway database too: the file the user
// gave is the PGMQ they want.
func TestThrowawayClusterTakesThePGMQFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, _ := startThrowaway(t, ctx)
	file := installFile(t)
	state, err := preparePGMQ(ctx, s.URL, file, true, true)
	want := "SQL install (schema pgmq)"
	if os.Getenv("PGMQ_SQL") == "" {
		want = compatHow // installFile is the compat schema then
	}
	if err != nil || state.How != want {
		t.Fatalf("prepare with -pgmq-sql %s: %+v, %v; want %q", file, state, err, want)
	}
}

// A PGBIN without the server programs is named in the error.
func TestThrowawayClusterBadPGBIN(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PGBIN", dir)
	_, err := startPGServer(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "PGBIN="+dir+" holds no initdb and postgres") {
		t.Fatalf("startPGServer with an empty PGBIN: %v", err)
	}
}
