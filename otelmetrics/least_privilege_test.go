package otelmetrics

import (
	"context"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// runSQL runs statements (a shipped file's, several to a string) in the
// simple protocol as the user postgres.
func runSQL(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Conn().PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func runSQLFile(t *testing.T, pool *pgxpool.Pool, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	runSQL(t, pool, string(b))
}

// isPrivilegeError reports whether err carries the server's
// insufficient_privilege (42501).
func isPrivilegeError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// The shipped role (deploy/postgres/monitor-role.sql), granted to a login
// on a cluster of the test's own (roles are cluster-wide), samples every
// queue kind, queues created after it was applied among them, and holds
// the election lease, with the table from the shipped migration and no
// DDL at run time; it can write nothing. Then each of its grants is
// revoked in turn: each refusal is a typed error (the server's 42501 in
// the chain), counted once in pgmq.sampler.errors as error.type 42501,
// and the figures it stands in the way of are left out, never made up.
func TestLeastPrivilegeRole(t *testing.T) {
	cluster := pgcluster.Start(t, pgcluster.Options{})
	db := pgmqtest.NewAt(t, cluster.URL(""))
	db.InstallPartman(t)
	ctx := context.Background()
	c := pgmqclient.New(db.Pool)
	for _, err := range []error{
		c.CreateQueue(ctx, "plain"),
		c.CreateUnloggedQueue(ctx, "unlogged"),
		c.CreatePartitioned(ctx, "parts"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	runSQLFile(t, db.Pool, "../deploy/postgres/election-lease.sql")
	runSQLFile(t, db.Pool, "../deploy/postgres/monitor-role.sql")
	runSQLFile(t, db.Pool, "../deploy/postgres/monitor-role.sql") // idempotent
	runSQL(t, db.Pool, "CREATE ROLE app_monitor LOGIN; GRANT pgmqotel_sampler TO app_monitor")
	// Queues created after the role was applied: default privileges.
	for _, err := range []error{c.CreateQueue(ctx, "later"), c.CreatePartitioned(ctx, "later_parts")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{"plain": 3, "unlogged": 2, "parts": 4, "later": 1, "later_parts": 1}
	for q, n := range want {
		sendN(t, c, q, int(n))
	}

	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("app_monitor")
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg := queuesampler.Config{Conn: pool.Config(), MinInterval: -1, NoElectionDDL: true}

	// sample takes one collection as the role, and closes the sampler
	// (releasing the lease) unless keep.
	sample := func(t *testing.T) (collected, *Metrics) {
		t.Helper()
		setErrorHandler(t)
		m, r := newTestMetrics(t, WithQueueSampler(cfg))
		return collect(t, r), m
	}

	t.Run("every queue kind", func(t *testing.T) {
		got, m := sample(t)
		if n := got.samplerErrors(); n != 0 {
			t.Fatalf("sampler errors as the role: %v (%v)", got.errorTypes(), sampler(m).Last())
		}
		for q, n := range want {
			if v := got.mustValue(t, MetricQueueDepth, queueAttr(q), visible); v != n {
				t.Errorf("%s visible = %v, want %v", q, v, n)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatalf("Close (releases the lease): %v", err)
		}
	})

	t.Run("nothing more", func(t *testing.T) {
		for _, sql := range []string{
			"INSERT INTO pgmq.q_plain (vt, message) VALUES (now(), '{}')",
			"DELETE FROM pgmq.q_parts",
			"UPDATE pgmq.q_unlogged SET vt = now()",
			"SELECT pgmq.send('plain', '{}'::jsonb)",
			"SELECT pgmq.drop_queue('later')",
			"SELECT pgmq.create('mine')",
			"CREATE TABLE pgmqotel.mine (x int)",
			"CREATE TABLE public.mine (x int)",
			"CREATE TABLE pgmq.mine (x int)",
			"TRUNCATE pgmqotel.election_lease",
			"ALTER TABLE pgmqotel.election_lease ADD COLUMN x int",
			"SELECT count(*) FROM partman.part_config",
		} {
			if _, err := pool.Exec(ctx, sql); !isPrivilegeError(err) {
				t.Errorf("%s as the role: %v, want insufficient_privilege (42501)", sql, err)
			}
		}
		var super, createRole, createDB bool
		if err := pool.QueryRow(ctx, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'pgmqotel_sampler'").Scan(&super, &createRole, &createDB); err != nil {
			t.Fatal(err)
		}
		if super || createRole || createDB {
			t.Fatalf("pgmqotel_sampler: superuser %v, createrole %v, createdb %v", super, createRole, createDB)
		}
	})

	// Each grant of the role, how to take it away, and what it stands for:
	// the queues whose figures go (all of them when none is named).
	for _, tc := range []struct {
		name, revoke, restore string
		queues                []string // the queues left out; nil: every queue
		op                    string   // the failing operation, for a whole sample
	}{
		{name: "usage on schema pgmq", revoke: "REVOKE USAGE ON SCHEMA pgmq FROM pgmqotel_sampler", op: queuesampler.OpSample},
		{name: "select on pgmq.meta", revoke: "REVOKE SELECT ON pgmq.meta FROM pgmqotel_sampler", op: queuesampler.OpSample},
		{name: "select on a queue", revoke: "REVOKE SELECT ON pgmq.q_plain FROM pgmqotel_sampler", queues: []string{"plain"}},
		{name: "select on an unlogged queue", revoke: "REVOKE SELECT ON pgmq.q_unlogged FROM pgmqotel_sampler", queues: []string{"unlogged"}},
		{name: "select on a partitioned queue", revoke: "REVOKE SELECT ON pgmq.q_parts FROM pgmqotel_sampler", queues: []string{"parts"}},
		{name: "select on a queue's sequence", revoke: "REVOKE SELECT ON SEQUENCE pgmq.q_later_msg_id_seq FROM pgmqotel_sampler", queues: []string{"later"}},
		{name: "default privileges", revoke: "ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq REVOKE SELECT ON TABLES FROM pgmqotel_sampler; SELECT pgmq.create('newest'); SELECT pgmq.send('newest', '{}')",
			restore: "SELECT pgmq.drop_queue('newest')", queues: []string{"newest"}},
		{name: "usage on schema pgmqotel", revoke: "REVOKE USAGE ON SCHEMA pgmqotel FROM pgmqotel_sampler", op: queuesampler.OpElect},
		{name: "select on the lease", revoke: "REVOKE SELECT ON pgmqotel.election_lease FROM pgmqotel_sampler", op: queuesampler.OpElect},
		{name: "insert on the lease", revoke: "REVOKE INSERT ON pgmqotel.election_lease FROM pgmqotel_sampler", op: queuesampler.OpElect},
		{name: "update on the lease", revoke: "REVOKE UPDATE ON pgmqotel.election_lease FROM pgmqotel_sampler", op: queuesampler.OpElect},
	} {
		t.Run("without "+tc.name, func(t *testing.T) {
			runSQL(t, db.Pool, tc.revoke)
			t.Cleanup(func() {
				if tc.restore != "" {
					runSQL(t, db.Pool, tc.restore)
				}
				runSQLFile(t, db.Pool, "../deploy/postgres/monitor-role.sql")
				runSQL(t, db.Pool, "DELETE FROM pgmqotel.election_lease")
			})
			got, m := sample(t)
			if types := got.errorTypes(); types["42501"] != 1 || len(types) != 1 {
				t.Fatalf("error types: %v, want 42501 once", types)
			}
			last := sampler(m).Last()
			if tc.queues == nil {
				if pts := got.points(MetricQueueDepth); len(pts) != 0 {
					t.Fatalf("depth points without %s: %v", tc.name, pts)
				}
				if last == nil || last.Op != tc.op || !isPrivilegeError(last.Err) {
					t.Fatalf("last sample: %+v, want %s failing with 42501", last, tc.op)
				}
				return
			}
			left := map[string]bool{}
			for _, q := range tc.queues {
				left[q] = true
				if _, ok := got.value(MetricQueueDepth, queueAttr(q), visible); ok {
					t.Errorf("%s reported without %s", q, tc.name)
				}
			}
			for _, q := range last.Queues {
				if left[q.Name] != (q.Err != nil) || (q.Err != nil && !isPrivilegeError(q.Err)) {
					t.Errorf("queue %s: %v", q.Name, q.Err)
				}
			}
			for q, n := range want {
				if v, ok := got.value(MetricQueueDepth, queueAttr(q), visible); !left[q] && (!ok || v != n) {
					t.Errorf("%s = %v (reported %v), want %v", q, v, ok, n)
				}
			}
		})
	}

	// Without DELETE the sampler samples, and only its release on Close
	// fails, typed; the lease then expires by itself.
	t.Run("without delete on the lease", func(t *testing.T) {
		runSQL(t, db.Pool, "REVOKE DELETE ON pgmqotel.election_lease FROM pgmqotel_sampler")
		t.Cleanup(func() { runSQLFile(t, db.Pool, "../deploy/postgres/monitor-role.sql") })
		got, m := sample(t)
		if n := got.samplerErrors(); n != 0 {
			t.Fatalf("sampler errors: %v", got.errorTypes())
		}
		if _, ok := got.value(MetricQueueDepth, queueAttr("plain"), visible); !ok {
			t.Fatal("plain not reported")
		}
		if err := m.Close(); !isPrivilegeError(err) {
			t.Fatalf("Close without DELETE on the lease: %v, want a 42501 release failure", err)
		}
	})
}
