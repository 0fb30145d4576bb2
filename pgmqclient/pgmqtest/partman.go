package pgmqtest

import (
	"context"
	"os"
	"testing"
)

// InstallPartman installs pg_partman into the test database (in its own
// schema partman, as its documentation advises) for partitioned queues,
// and returns its version. Where the server lacks the extension the test
// is skipped, unless CI is set, in which case it fails (CI installs
// Debian's postgresql-15-partman).
func (db *DB) InstallPartman(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	var available bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman')`).Scan(&available); err != nil {
		tb.Fatal(err)
	}
	if !available {
		if os.Getenv("CI") != "" {
			tb.Fatal("pg_partman is not available on the server (CI installs postgresql-15-partman)")
		}
		tb.Skip("pg_partman is not available on the server; install postgresql-15-partman")
	}
	if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman`); err != nil {
		tb.Fatal(err)
	}
	var version string
	if err := db.Pool.QueryRow(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'`).Scan(&version); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("pg_partman %s", version)
	return version
}
