package queuesampler_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgbouncer"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// execModes are every pgx query exec mode, as users set them in
// DATABASE_URL (default_query_exec_mode).
var execModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// bounced is a test database with PgBouncer in front of it.
type bounced struct {
	db      *pgmqtest.DB
	bouncer *pgbouncer.Bouncer
	client  *pgmqclient.Client // direct
}

// newBounced starts PgBouncer in transaction mode in front of a fresh
// database, with settings added to the stock ones.
func newBounced(t *testing.T, settings map[string]string) *bounced {
	t.Helper()
	db := pgmqtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := pgbouncer.Start(t, pgbouncer.Options{Target: u.Host, Mode: pgbouncer.Transaction, Settings: settings})
	return &bounced{db: db, bouncer: b, client: pgmqclient.New(db.Pool)}
}

// dsn is the bouncer's URL for the database, with extra parameters.
func (b *bounced) dsn(params string) string {
	u := b.bouncer.URL("", "", b.db.Name)
	if params != "" {
		u += "&" + params
	}
	return u
}

// newSampler returns a sampler connecting with dsn, closed at the end.
func newSampler(t testing.TB, dsn string, cfg queuesampler.Config) *queuesampler.Sampler {
	t.Helper()
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Conn = pc
	if cfg.MinInterval == 0 {
		cfg.MinInterval = -1 // every Get samples
	}
	s, err := queuesampler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// get takes a sample that must succeed, as the sampler.
func get(t testing.TB, s *queuesampler.Sampler) *queuesampler.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sample, err := s.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sample.Err != nil || sample.Role != queuesampler.RoleSampler {
		t.Fatalf("sample: role %s %s, op %s: %v", sample.Role, sample.Reason, sample.Op, sample.Err)
	}
	return sample
}

// count is SELECT count(*) of queue's table, straight to the server.
func count(t testing.TB, db *pgmqtest.DB, queue string) int64 {
	t.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{"pgmq", "q_" + strings.ToLower(queue)}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// busyClients keeps n other clients' transactions going through dsn until
// stop (at most two minutes), so that consecutive transactions of the
// sampler land on different server connections.
func busyClients(dsn string, n int) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, dsn+"&default_query_exec_mode=simple_protocol")
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			for ctx.Err() == nil {
				_, _ = conn.Exec(ctx, "SELECT pg_sleep(0.002)")
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// serverConnStatements holds n transactions through the bouncer at once,
// so n distinct server connections when its pool holds n, and returns the
// process ids seen and every prepared statement named pgmqotel* on them.
func serverConnStatements(t *testing.T, dsn string, n int) (pids map[uint32]bool, names []string) {
	t.Helper()
	ctx := context.Background()
	pids = map[uint32]bool{}
	var txs []pgx.Tx
	defer func() {
		for _, tx := range txs {
			_ = tx.Rollback(ctx)
		}
	}()
	for range n {
		conn, err := pgx.Connect(ctx, dsn+"&default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
		var pid uint32
		if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
		rows, _ := tx.Query(ctx, "SELECT name FROM pg_prepared_statements WHERE name LIKE 'pgmqotel%'")
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			names = append(names, fmt.Sprintf("%s on backend %d", g, pid))
		}
	}
	return pids, names
}
