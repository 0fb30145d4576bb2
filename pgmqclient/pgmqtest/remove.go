package pgmqtest

import (
	"context"
	"testing"
	"time"
)

// RemovePGMQ leaves the database without PGMQ, as a plain PostgreSQL
// where it was never installed: the extension (when it was installed as
// one) and the pgmq schema are dropped.
func (db *DB) RemovePGMQ(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if db.Install == InstallExtension {
		if _, err := db.Pool.Exec(ctx, "DROP EXTENSION pgmq CASCADE"); err != nil {
			tb.Fatalf("remove PGMQ: %v", err)
		}
	}
	if _, err := db.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS pgmq CASCADE"); err != nil {
		tb.Fatalf("remove PGMQ: %v", err)
	}
}
