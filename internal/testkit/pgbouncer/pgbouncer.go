// Package pgbouncer starts a throwaway PgBouncer for tests, in front of a
// PostgreSQL server, with the stock settings of Debian's package except
// those a test chooses: pool mode, authentication, pool sizes.
//
// The binary is $PGBOUNCER_BIN, else /usr/sbin/pgbouncer (Debian's
// pgbouncer package). PgBouncer refuses to run as root, so a test running as
// root runs it as the user postgres (runuser). It listens on a free port on
// 127.0.0.1 only and is stopped when the test ends. Without the binary the
// test is skipped, unless CI is set, in which case it fails.
package pgbouncer

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
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
)

// Pool modes.
const (
	Session     = "session"
	Transaction = "transaction"
)

// Options configure a PgBouncer.
type Options struct {
	// Target is the PostgreSQL server, host:port.
	Target string
	// Mode is the pool mode: Session (default) or Transaction.
	Mode string
	// AuthType is PgBouncer's auth_type: "trust" (default) or "md5",
	// "plain", "scram-sha-256" with the passwords of Users.
	AuthType string
	// Users are the entries of the auth file, user to password. The user
	// postgres (no password) is always there.
	Users map[string]string
	// ServerUser, when set, is the user PgBouncer logs into PostgreSQL as,
	// whoever the client is.
	ServerUser string
	// Settings are extra [pgbouncer] settings, such as
	// {"default_pool_size": "1"}.
	Settings map[string]string
}

// Bouncer is a running PgBouncer.
type Bouncer struct {
	// Port is its TCP port on 127.0.0.1.
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts PgBouncer with opts and waits until it serves connections.
func Start(tb testing.TB, opts Options) *Bouncer {
	tb.Helper()
	bin := os.Getenv("PGBOUNCER_BIN")
	if bin == "" {
		bin = "/usr/sbin/pgbouncer"
	}
	if _, err := os.Stat(bin); err != nil {
		const hint = "install Debian's pgbouncer package or set PGBOUNCER_BIN"
		if os.Getenv("CI") != "" {
			tb.Fatalf("pgbouncer: %v (CI is set, so this fails); %s", err, hint)
		}
		tb.Skipf("pgbouncer: %v, skipping; %s", err, hint)
	}
	host, port, err := net.SplitHostPort(opts.Target)
	if err != nil {
		tb.Fatalf("pgbouncer: target %q: %v", opts.Target, err)
	}
	if opts.Mode == "" {
		opts.Mode = Session
	}
	if opts.AuthType == "" {
		opts.AuthType = "trust"
	}
	// A directory the user postgres can read (t.TempDir is private to root).
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	var owner *user.User
	if os.Geteuid() == 0 {
		if owner, err = user.Lookup("postgres"); err != nil {
			tb.Skipf("pgbouncer: running as root needs the user postgres: %v", err)
		}
	}

	b := &Bouncer{Port: pgcluster.FreePort(tb), dir: dir, done: make(chan struct{})}
	db := "host=" + host + " port=" + port
	if opts.ServerUser != "" {
		db += " user=" + opts.ServerUser
	}
	settings := map[string]string{
		"listen_addr":       "127.0.0.1",
		"listen_port":       strconv.Itoa(b.Port),
		"unix_socket_dir":   "",
		"auth_type":         opts.AuthType,
		"auth_file":         filepath.Join(dir, "userlist.txt"),
		"pool_mode":         opts.Mode,
		"logfile":           filepath.Join(dir, "pgbouncer.log"),
		"pidfile":           filepath.Join(dir, "pgbouncer.pid"),
		"admin_users":       "postgres",
		"max_client_conn":   "200",
		"default_pool_size": "20",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ini := "[databases]\n* = " + db + "\n\n[pgbouncer]\n"
	for _, k := range keys {
		ini += k + " = " + settings[k] + "\n"
	}
	users := map[string]string{"postgres": ""}
	for u, p := range opts.Users {
		users[u] = p
	}
	var list strings.Builder
	for u, p := range users {
		fmt.Fprintf(&list, "%q %q\n", u, p)
	}
	iniPath := filepath.Join(dir, "pgbouncer.ini")
	for path, content := range map[string]string{iniPath: ini, settings["auth_file"]: list.String()} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		for _, p := range []string{dir, iniPath, settings["auth_file"]} {
			if err := os.Chown(p, uid, gid); err != nil {
				tb.Fatal(err)
			}
		}
		b.cmd = exec.Command("runuser", "-u", owner.Username, "--", bin, iniPath)
	} else {
		b.cmd = exec.Command(bin, iniPath)
	}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		tb.Fatalf("pgbouncer: start: %v", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	tb.Cleanup(func() { b.stop(tb) })
	b.waitReady(tb)
	return b
}

// URL returns a URL for database db as user (postgres when empty) with
// password (none when empty).
func (b *Bouncer) URL(userName, password, db string) string {
	if userName == "" {
		userName = "postgres"
	}
	u := &url.URL{Scheme: "postgres", Host: "127.0.0.1:" + strconv.Itoa(b.Port), Path: "/" + db, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(userName, password)
	} else {
		u.User = url.User(userName)
	}
	return u.String()
}

// Log returns PgBouncer's log so far.
func (b *Bouncer) Log() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(out)
}

func (b *Bouncer) waitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, b.URL("postgres", "", "pgbouncer")+"&default_query_exec_mode=simple_protocol")
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return
		}
		// An answer, even a refusal (the admin console under password
		// authentication), means PgBouncer serves.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return
		}
		select {
		case <-b.done:
			tb.Fatalf("pgbouncer exited: %v\n%s", b.cmd.ProcessState, b.Log())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pgbouncer not ready on port %d: %v\n%s", b.Port, err, b.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends PgBouncer (immediate shutdown) and its runuser parent. The
// signal goes to PgBouncer itself: runuser, signalled, would wait two
// seconds before killing its child.
func (b *Bouncer) stop(tb testing.TB) {
	pgid := b.cmd.Process.Pid
	if pid, err := os.ReadFile(filepath.Join(b.dir, "pgbouncer.pid")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
			_ = syscall.Kill(n, syscall.SIGTERM)
		}
	} else {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-b.done
		tb.Logf("pgbouncer: killed after no exit on SIGTERM")
	}
}
