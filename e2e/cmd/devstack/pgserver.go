package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// pgServer is a throwaway PostgreSQL cluster of devstack's own, for
// -orchestrator without DATABASE_URL: made with the machine's initdb,
// listening on 127.0.0.1 only (no Unix socket), trusting the user
// postgres, and removed at exit. Its log goes to the -dir folder.
type pgServer struct {
	URL     string // postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable
	Port    int
	LogPath string
	home    string // holds the data directory; removed by stop
	cmd     *exec.Cmd
	done    chan struct{} // closed when the server process has exited
	waitErr error         // valid once done is closed
}

// pgStartAttempts bounds restarts after the port was taken between
// choosing and binding it.
const pgStartAttempts = 3

// pgReadyTimeout bounds the wait for a fresh cluster to accept
// connections (a second or two; far more on a loaded machine).
const pgReadyTimeout = time.Minute

// startPGServer initializes a cluster in a new temporary directory and
// starts it on a free port, logging to logDir/postgres.log. PostgreSQL
// refuses to run as root, so as root the server runs as the user postgres
// (which the server package creates).
func startPGServer(ctx context.Context, logDir string) (*pgServer, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "pgmqotel-devstack-pg-")
	if err != nil {
		return nil, fmt.Errorf("throwaway PostgreSQL: %w", err)
	}
	s := &pgServer{home: home, LogPath: filepath.Join(logDir, "postgres.log")}
	fail := func(err error) (*pgServer, error) {
		_ = os.RemoveAll(home)
		return nil, err
	}
	data := filepath.Join(home, "data")
	if err := os.Chmod(home, 0o755); err != nil { // the user postgres must reach data
		return fail(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		return fail(err)
	}
	if cred != nil {
		if err := os.Chown(data, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.Dir, initdb.SysProcAttr, initdb.Env = home, &syscall.SysProcAttr{Credential: cred}, append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("throwaway PostgreSQL: %s: %w\n%s", initdb, err, out))
	}
	var lastErr error
	for range pgStartAttempts {
		addrs, err := stack.FixedAddrs(1)
		if err != nil {
			return fail(err)
		}
		_, port, _ := net.SplitHostPort(addrs[0])
		s.Port, _ = strconv.Atoi(port)
		s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
		if lastErr = s.run(ctx, bin, data, cred); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil || !strings.Contains(lastErr.Error(), "already in use") {
			break
		}
	}
	return fail(lastErr)
}

// run starts the server process on s.Port and waits until it accepts
// connections; a server that exits first is an error with its log's end.
func (s *pgServer) run(ctx context.Context, bin, data string, cred *syscall.Credential) error {
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("throwaway PostgreSQL: %w", err)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(s.Port),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "full_page_writes=off")
	s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = s.home, logFile, logFile
	s.cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Pdeathsig: a devstack killed outright takes the server with it.
	// Setpgid: Ctrl-C in a terminal signals the whole foreground group, and
	// SIGINT is PostgreSQL's fast shutdown; the server must outlive the
	// orchestrator's own shutdown, so devstack stops it last.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("throwaway PostgreSQL: start %s: %w", s.cmd, err)
	}
	s.done = make(chan struct{})
	go func() {
		s.waitErr = s.cmd.Wait()
		_ = logFile.Close()
		close(s.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, pgReadyTimeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.URL)
		ccancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("throwaway PostgreSQL on port %d exited (%v); the end of %s:\n%s", s.Port, s.waitErr, s.LogPath, logTail(s.LogPath, 10))
		case <-ctx.Done():
			_ = s.stop(context.Background())
			return fmt.Errorf("throwaway PostgreSQL on port %d: not accepting connections after %v: %w", s.Port, pgReadyTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop shuts the server down (fast: open sessions are ended, as after the
// orchestrator's exit there should be none), kills it if ctx ends first,
// and removes its data.
func (s *pgServer) stop(ctx context.Context) error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-s.done:
		case <-ctx.Done():
			_ = s.cmd.Process.Kill()
			<-s.done
			err = fmt.Errorf("throwaway PostgreSQL did not shut down in time: killed (%w)", ctx.Err())
		}
	}
	return errors.Join(err, os.RemoveAll(s.home))
}

// pgBinDir finds the PostgreSQL server programs (initdb, postgres): $PGBIN,
// else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin
// (Debian's layout), else the directory of initdb on PATH.
func pgBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("PGBIN"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("PGBIN=%s holds no initdb and postgres", d)
		}
		return d, nil
	}
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(debian, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	candidates = append(candidates, debian...)
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}
	for _, d := range candidates {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server programs (initdb, postgres) found for a throwaway database: " +
		"install the PostgreSQL server package (Debian: apt-get install postgresql), set PGBIN to their directory, " +
		"or set DATABASE_URL to a server of yours")
}

// pgVersion is the major version in /usr/lib/postgresql/<version>/bin, 0
// when there is none.
func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// pgCredential is who runs the server: nil (this process's user) unless
// this is root, which PostgreSQL refuses; then the user postgres.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("throwaway PostgreSQL: PostgreSQL does not run as root, and there is no user postgres to run it as (%w): "+
			"install the PostgreSQL server package, which creates it, run as another user, or set DATABASE_URL", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("throwaway PostgreSQL: user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// logTail returns the last n lines of a file ("" when unreadable).
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
