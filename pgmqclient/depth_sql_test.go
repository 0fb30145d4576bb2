package pgmqclient_test

import (
	"context"
	"testing"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// TestDepthStatementsPrepare prepares every depth statement on real
// PostgreSQL with PGMQ installed, so a typo or a column PGMQ does not have
// fails here rather than in a sample.
func TestDepthStatementsPrepare(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "Prep_Queue"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for name, sql := range pgmqclient.DepthStatements("q_prep_queue") {
		if _, err := conn.Conn().PgConn().Prepare(ctx, "", sql, nil); err != nil {
			t.Errorf("%s: %v\n%s", name, err, sql)
		}
	}
}
