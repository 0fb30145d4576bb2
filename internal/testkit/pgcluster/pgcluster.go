// Package pgcluster starts throwaway PostgreSQL clusters for tests that
// need a server of their own: crash restarts, hot standbys, promotion and
// server settings that would disturb the shared test server.
//
// A cluster is made with the server binaries of the machine (initdb,
// pg_ctl, pg_basebackup from $PGBIN, else `pg_config --bindir`, else
// /usr/lib/postgresql/15/bin), listens on a free port on 127.0.0.1 only
// (and on a Unix socket in its own directory), trusts local connections
// for the user postgres, and is stopped and removed when the test ends.
// With Options.TLS it serves SSL and admits TCP clients only with a client
// certificate of a test CA (tls.go). PostgreSQL refuses to run as root, so when
// the test runs as root the binaries run as the user postgres (runuser).
//
// Without the binaries the test is skipped, unless CI is set, in which
// case it fails.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a new cluster.
type Options struct {
	// Settings are extra postgresql.conf parameters, such as
	// {"idle_session_timeout": "5s"}. Values are written as given.
	Settings map[string]string
	// TLS, when not nil, turns SSL on and admits TCP clients only over SSL
	// with a client certificate (see TLS).
	TLS *TLS
}

// Cluster is one running (or stopped) PostgreSQL cluster.
type Cluster struct {
	// Dir is the data directory.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int

	bin     string
	owner   *user.User // nil when not running as root
	logFile string
	socket  string // Unix socket directory
	ca      *CA    // nil without TLS
}

// Start initializes a cluster with opts and starts it. The cluster is
// stopped (immediately) and its directory removed at the end of the test.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	c := newCluster(tb)
	c.run(tb, "initdb", "-D", c.Dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	settings := opts.Settings
	if opts.TLS != nil {
		settings = c.configureTLS(tb, opts.TLS)
		for k, v := range opts.Settings {
			settings[k] = v
		}
	}
	c.configure(tb, settings)
	c.Start(tb)
	return c
}

func newCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := binDir()
	if err != nil {
		missing(tb, err)
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if c.owner, err = user.Lookup("postgres"); err != nil {
			missing(tb, fmt.Errorf("running as root needs the user postgres: %w", err))
		}
	}
	// A directory of our own under the system temp dir, which the user
	// postgres can reach (t.TempDir is private to root).
	parent, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		tb.Fatal(err)
	}
	c.Dir = filepath.Join(parent, "data")
	c.socket = parent
	c.logFile = filepath.Join(parent, "server.log")
	if err := os.Mkdir(c.Dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	c.chown(tb, parent, c.Dir)
	c.Port = FreePort(tb)
	tb.Cleanup(func() {
		if tb.Failed() {
			c.logTail(tb)
		}
		c.stop("immediate")
	})
	return c
}

// configure appends the listen settings and opts to postgresql.conf.
func (c *Cluster) configure(tb testing.TB, settings map[string]string) {
	tb.Helper()
	lines := []string{
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(c.Port),
		"unix_socket_directories = '" + c.socket + "'",
		"fsync = off",
		"full_page_writes = off",
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, k+" = '"+strings.ReplaceAll(settings[k], "'", "''")+"'")
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n# pgcluster\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		tb.Fatal(err)
	}
}

// URL returns a connection URL for database db (postgres when empty), as
// the user postgres: over TCP without SSL, or, for a cluster started with
// TLS, through the Unix socket (see TLSURL for TCP).
func (c *Cluster) URL(db string) string {
	if db == "" {
		db = "postgres"
	}
	if c.ca != nil {
		return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, url.QueryEscape(c.socket), c.Port)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// LogPath is the server's log file, for tests that read what the server
// logged (with Options.Settings such as log_statement and
// log_line_prefix).
func (c *Cluster) LogPath() string { return c.logFile }

// adminHost is where the server binaries reach the cluster.
func (c *Cluster) adminHost() string {
	if c.ca != nil {
		return c.socket
	}
	return "127.0.0.1"
}

// Start starts the stopped cluster and waits until it accepts connections
// (a standby: until it accepts read-only connections).
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	c.run(tb, "pg_ctl", "start", "-D", c.Dir, "-l", c.logFile, "-w", "-t", "60")
	c.waitReady(tb)
}

// Stop stops the cluster: mode "fast" shuts down cleanly, "immediate"
// aborts it the way a crash does (the next start runs crash recovery and
// the statistics are reset).
func (c *Cluster) Stop(tb testing.TB, mode string) {
	tb.Helper()
	if err := c.stop(mode); err != nil {
		tb.Fatalf("pgcluster: stop -m %s: %v", mode, err)
	}
}

func (c *Cluster) stop(mode string) error {
	if _, err := os.Stat(filepath.Join(c.Dir, "postmaster.pid")); err != nil {
		return nil // not running
	}
	_, err := c.output("pg_ctl", "stop", "-D", c.Dir, "-m", mode, "-w", "-t", "60")
	return err
}

// Restart stops the cluster with mode and starts it again.
func (c *Cluster) Restart(tb testing.TB, mode string) {
	tb.Helper()
	c.Stop(tb, mode)
	c.Start(tb)
}

// Standby makes a hot standby of c with pg_basebackup (streaming
// replication, recovery settings written by -R), on a port of its own, and
// starts it. It is stopped and removed at the end of the test.
func (c *Cluster) Standby(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	s := newCluster(tb)
	s.bin, s.owner, s.ca = c.bin, c.owner, c.ca
	if err := os.Remove(s.Dir); err != nil {
		tb.Fatal(err)
	}
	s.run(tb, "pg_basebackup", "-D", s.Dir, "-h", c.adminHost(), "-p", strconv.Itoa(c.Port),
		"-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync")
	// The copied postgresql.conf names the primary's port; the last
	// setting wins.
	s.configure(tb, opts.Settings)
	s.Start(tb)
	return s
}

// Promote ends recovery on a standby and waits until it accepts writes.
func (c *Cluster) Promote(tb testing.TB) {
	tb.Helper()
	c.run(tb, "pg_ctl", "promote", "-D", c.Dir, "-w", "-t", "60")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var recovering bool
		err := c.queryRow(ctx, "SELECT pg_is_in_recovery()", &recovering)
		if err == nil && !recovering {
			return
		}
		if ctx.Err() != nil {
			tb.Fatalf("pgcluster: still in recovery after promote: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitReplayed waits until the standby has replayed the primary's WAL up
// to the primary's current position.
func (c *Cluster) WaitReplayed(tb testing.TB, primary *Cluster) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var target string
	if err := primary.queryRow(ctx, "SELECT pg_current_wal_lsn()::text", &target); err != nil {
		tb.Fatalf("pgcluster: primary WAL position: %v", err)
	}
	for {
		var done bool
		err := c.queryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", &done, target)
		if err == nil && done {
			return
		}
		if ctx.Err() != nil {
			tb.Fatalf("pgcluster: standby did not replay up to %s: %v", target, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) waitReady(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var one int
		err := c.queryRow(ctx, "SELECT 1", &one)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			tb.Fatalf("pgcluster: server on port %d not ready: %v", c.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) queryRow(ctx context.Context, sql string, dst any, args ...any) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, c.URL(""))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(cctx, sql, args...).Scan(dst)
}

// run runs one of the server binaries, failing the test with its output.
func (c *Cluster) run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := c.output(name, args...); err != nil {
		c.logTail(tb)
		tb.Fatalf("pgcluster: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (c *Cluster) output(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.owner != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.owner.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

func (c *Cluster) chown(tb testing.TB, paths ...string) {
	tb.Helper()
	if c.owner == nil {
		return
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
}

func (c *Cluster) logTail(tb testing.TB) {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	tb.Logf("pgcluster: server log (port %d), last lines:\n%s", c.Port, b)
}

// binDir finds the directory of initdb and pg_ctl.
func binDir() (string, error) {
	var dirs []string
	if d := os.Getenv("PGBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	dirs = append(dirs, "/usr/lib/postgresql/15/bin")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb found in $PGBIN, `pg_config --bindir` or /usr/lib/postgresql/15/bin")
}

// missing skips the test, or fails it when CI is set.
func missing(tb testing.TB, err error) {
	tb.Helper()
	const hint = "install the PostgreSQL server package (Debian: postgresql-15) or set PGBIN"
	if os.Getenv("CI") != "" {
		tb.Fatalf("pgcluster: %v (CI is set, so this fails); %s", err, hint)
	}
	tb.Skipf("pgcluster: %v, skipping; %s", err, hint)
}

// FreePort asks the kernel for a free port on 127.0.0.1, for test servers
// (this package's clusters, PgBouncer).
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
