// Package pgmqtest gives each test a fresh, empty PostgreSQL database with
// PGMQ installed, and drops it when the test ends.
//
// The server comes from DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres). PGMQ is installed by the
// first method that works:
//
//  1. "extension": CREATE EXTENSION pgmq;
//  2. "sql-file": the SQL-only install script at the path in PGMQ_SQL;
//  3. "compat": this package's own PGMQ-compatible schema (compat.sql),
//     which provides what pgmqclient calls, with PGMQ's names and result
//     shapes.
//
// When the server cannot be reached the test is skipped, unless the CI
// environment variable is set, in which case it fails.
package pgmqtest

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the server used when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// Install methods, as reported in DB.Install.
const (
	InstallExtension = "extension"
	InstallSQLFile   = "sql-file"
	InstallCompat    = "compat"
)

// fileVersion finds a release number in an install file's name.
var fileVersion = regexp.MustCompile(`\d+\.\d+\.\d+`)

//go:embed compat.sql
var compatSQL string

// DB is one test's database.
type DB struct {
	// URL connects to the database (the server URL with its name).
	URL string
	// Name is the database name, pgmqtest_<random>.
	Name string
	// Pool is a pool on the database, closed before the database is dropped.
	Pool *pgxpool.Pool
	// Install says how PGMQ was installed: "extension", "sql-file" or "compat".
	Install string
}

// ServerURL returns DATABASE_URL, or DefaultURL when it is not set.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// New creates a uniquely named database on the server at ServerURL,
// installs PGMQ in it, and registers a cleanup that closes the pool and
// drops the database (WITH (FORCE), so connections the test left open do
// not keep it alive).
func New(tb testing.TB) *DB {
	tb.Helper()
	return newOn(tb, ServerURL(), false, "")
}

// NewAt is New on the server at serverURL, for tests that run a server of
// their own (see internal/pgcluster). It fails the test, rather than
// skipping it, when that server cannot be reached.
func NewAt(tb testing.TB, serverURL string) *DB {
	tb.Helper()
	return newOn(tb, serverURL, serverURL != ServerURL(), "")
}

// NewWithOptions is New with options for CREATE DATABASE appended to the
// statement, e.g. "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE
// 'tr-TR'" for a database whose lower() is Turkish.
func NewWithOptions(tb testing.TB, options string) *DB {
	tb.Helper()
	return newOn(tb, ServerURL(), false, options)
}

func newOn(tb testing.TB, server string, own bool, options string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		if own {
			tb.Fatalf("pgmqtest: connect to %s: %v", server, err)
		}
		unreachable(tb, err)
	}
	name := "pgmqtest_" + randomHex(8)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" "+options)
	admin.Close(ctx)
	if err != nil {
		tb.Fatalf("pgmqtest: create database %s: %v", name, err)
	}
	db := &DB{Name: name, URL: withDatabase(server, name)}
	tb.Cleanup(func() { db.drop(tb, server) })

	if db.Pool, err = pgxpool.New(ctx, db.URL); err != nil {
		tb.Fatalf("pgmqtest: pool for %s: %v", name, err)
	}
	why, err := db.install(ctx)
	if err != nil {
		tb.Fatalf("pgmqtest: install PGMQ into %s: %v", name, err)
	}
	tb.Logf("pgmqtest: database %s, PGMQ installed by %s%s", name, db.Install, why)
	return db
}

// unreachable skips the test, or fails it when CI is set.
func unreachable(tb testing.TB, err error) {
	tb.Helper()
	const hint = "start one with `pg_ctlcluster 15 main start` (or `docker run -d -p 5432:5432 " +
		"-e POSTGRES_HOST_AUTH_METHOD=trust ghcr.io/pgmq/pg17-pgmq:latest`), or point DATABASE_URL at one"
	if os.Getenv("CI") != "" {
		tb.Fatalf("pgmqtest: PostgreSQL at %s is unreachable (CI is set, so this fails): %v; %s", ServerURL(), err, hint)
	}
	tb.Skipf("pgmqtest: PostgreSQL at %s is unreachable, skipping: %v; %s", ServerURL(), err, hint)
}

// install tries the install methods in order. why explains, for the log,
// why earlier methods were passed over.
func (db *DB) install(ctx context.Context) (why string, err error) {
	_, err = db.Pool.Exec(ctx, "CREATE EXTENSION pgmq")
	if err == nil {
		db.Install = InstallExtension
		var v string
		if err := db.Pool.QueryRow(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'pgmq'").Scan(&v); err != nil {
			return "", err
		}
		return " (version " + v + ")", nil
	}
	skipped := []string{fmt.Sprintf("extension: %v", err)}

	if path := os.Getenv("PGMQ_SQL"); path != "" {
		err := db.runScript(ctx, path)
		if err == nil {
			db.Install = InstallSQLFile
			// A SQL install file does not record its version; its name
			// usually does (pgmq-1.5.1.sql).
			version := "version not in the file name"
			if v := fileVersion.FindString(filepath.Base(path)); v != "" {
				version = "version " + v
			}
			return fmt.Sprintf(" (%s, %s)", path, version), nil
		}
		skipped = append(skipped, fmt.Sprintf("PGMQ_SQL=%s: %v", path, err))
		// Leave no half-installed schema behind for the next method.
		if _, err := db.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS pgmq CASCADE"); err != nil {
			return "", err
		}
	} else {
		skipped = append(skipped, "sql-file: PGMQ_SQL not set")
	}

	if _, err := db.Pool.Exec(ctx, compatSQL); err != nil {
		return "", fmt.Errorf("compat schema: %w (after %s)", err, strings.Join(skipped, "; "))
	}
	db.Install = InstallCompat
	return " (" + strings.Join(skipped, "; ") + ")", nil
}

// runScript runs an SQL install script in one simple-protocol call, which
// PostgreSQL runs as one implicit transaction. psql meta-commands (lines
// starting with a backslash) are dropped.
func (db *DB) runScript(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), `\`) {
			kept = append(kept, l)
		}
	}
	_, err = db.Pool.Exec(ctx, strings.Join(kept, "\n"))
	return err
}

// drop closes the pool and drops the database.
func (db *DB) drop(tb testing.TB, server string) {
	if db.Pool != nil {
		db.Pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Errorf("pgmqtest: drop database %s: %v", db.Name, err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		tb.Errorf("pgmqtest: drop database %s: %v", db.Name, err)
	}
}

// withDatabase returns server with its database replaced by name, for both
// URL and keyword/value connection strings.
func withDatabase(server, name string) string {
	if strings.HasPrefix(server, "postgres://") || strings.HasPrefix(server, "postgresql://") {
		if u, err := url.Parse(server); err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	// In keyword/value strings the last setting of a keyword wins.
	return server + " dbname=" + name
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b)
}
