package queuesampler_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// migrationFile is the lease table's migration shipped for operators.
const migrationFile = "../deploy/postgres/election-lease.sql"

// The shipped migration is ElectionDDL, word for word: what an operator
// runs is what the sampler would have run.
func TestElectionMigrationFileIsElectionDDL(t *testing.T) {
	b, err := os.ReadFile(migrationFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), queuesampler.ElectionDDL) {
		t.Fatalf("%s does not hold queuesampler.ElectionDDL; copy it there:\n%s", migrationFile, queuesampler.ElectionDDL)
	}
}

// With NoElectionDDL the sampler runs no DDL: without the table it counts
// the failure by its SQLSTATE and reports no figures, and the table stays
// absent; once the migration has run it samples.
func TestNoElectionDDLWaitsForTheMigration(t *testing.T) {
	db := pgmqtest.New(t)
	ctx := context.Background()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	var reported []error
	s := newSampler(t, db.URL, queuesampler.Config{NoElectionDDL: true, OnError: func(err error) { reported = append(reported, err) }})
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sample, err := s.Get(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if sample.Err == nil || sample.Op != queuesampler.OpElect || len(sample.Queues) != 0 {
		t.Fatalf("no table, NoElectionDDL: %+v, want an election failure and no queues", sample)
	}
	if typ := queuesampler.ErrorType(sample.Err); typ != "3F000" && typ != "42P01" {
		t.Fatalf("error.type %q, want 3F000 or 42P01 (%v)", typ, sample.Err)
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "election-lease.sql") {
		t.Fatalf("reported %v, want one error naming the migration", reported)
	}
	var exists bool
	if err := db.Pool.QueryRow(ctx, "SELECT to_regclass('pgmqotel.election_lease') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("the sampler created the lease table with NoElectionDDL set")
	}

	b, err := os.ReadFile(migrationFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Conn().PgConn().Exec(ctx, string(b)).ReadAll()
	conn.Release()
	if err != nil {
		t.Fatalf("the migration: %v", err)
	}
	if q := get(t, s).Queues; len(q) != 1 || q[0].Name != "jobs" {
		t.Fatalf("after the migration: %+v", q)
	}
}
