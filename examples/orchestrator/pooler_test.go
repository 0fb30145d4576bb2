package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// Behind Debian's PgBouncer 1.18 in transaction mode, with a DATABASE_URL
// that says nothing about it, the orchestrator starts, processes its
// messages and reports its queue. Before, its pool failed at start with
// "prepared statement stmtcache_... already exists" (pgx's default
// statement cache, which 1.18 cannot follow across server connections).
func TestStartsBehindTransactionPooler(t *testing.T) {
	db := pgmqtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := pgbouncer.Start(t, pgbouncer.Options{Target: u.Host, Mode: pgbouncer.Transaction,
		Settings: map[string]string{"default_pool_size": "4", "server_round_robin": "1"}})
	r := start(t, testConfig(b.URL("", "", db.Name)))
	waitFor(t, 30*time.Second, "messages processed behind the pooler", func() bool {
		code, rep, _ := r.get(t)
		return code == 200 && rep.Tasks.Processed >= 10 && len(rep.Databases) == 1 && rep.Databases[0].Queues["task_requests"].Depth != nil
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	out := r.out.String()
	if strings.Contains(out, "prepared statement") {
		t.Fatalf("prepared statement errors behind the pooler:\n%s", out)
	}
	if !strings.Contains(out, "default_query_exec_mode=exec") {
		t.Errorf("the log does not say which exec mode was chosen behind the pooler:\n%s", out)
	}
}
