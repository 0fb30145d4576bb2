package pgbouncer

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Through PgBouncer in transaction mode a plain client works with the
// simple protocol, and the stock settings refuse a startup parameter other
// than the few PgBouncer tracks.
func TestStartTransactionMode(t *testing.T) {
	b := Start(t, Options{Target: "127.0.0.1:5432", Mode: Transaction})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.URL("", "", "postgres")+"&default_query_exec_mode=simple_protocol")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %v %v", one, err)
	}
	if _, err := pgx.Connect(ctx, b.URL("", "", "postgres")+"&statement_timeout=1000"); err == nil {
		t.Fatal("stock PgBouncer accepted statement_timeout as a startup parameter")
	} else {
		t.Logf("refused as expected: %v", err)
	}
}
