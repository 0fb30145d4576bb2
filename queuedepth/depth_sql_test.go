package queuedepth_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// TestStatementsPrepareWithTheirColumns prepares every statement of sql.go
// on real PostgreSQL with PGMQ installed, so a typo or a column PGMQ does
// not have fails here rather than in a sample, and checks that each
// returns exactly the columns declared beside it, by name: the stages read
// rows by those names.
func TestStatementsPrepareWithTheirColumns(t *testing.T) {
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
	stmts := queuedepth.Statements("q_prep_queue")
	for name, sql := range stmts {
		sd, err := conn.Conn().PgConn().Prepare(ctx, "", sql, nil)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, sql)
			continue
		}
		var got []string
		for _, f := range sd.Fields {
			got = append(got, f.Name)
		}
		if want := queuedepth.Columns[name]; !slices.Equal(got, want) {
			t.Errorf("%s: columns %v, declared %v", name, got, want)
		}
	}
	if len(queuedepth.Columns) != len(stmts) {
		t.Errorf("%d statements, %d column lists", len(stmts), len(queuedepth.Columns))
	}
}

// The simple protocol writes parameters into the text: every '$' of the
// sampler's SQL must start a parameter reference, and values of any
// content must come out as one literal each.
func TestInlineParameters(t *testing.T) {
	ref := regexp.MustCompile(`\$[0-9]+`)
	for name, sql := range queuedepth.Statements("q_x") {
		if stray := len(regexp.MustCompile(`\$`).FindAllString(sql, -1)) - len(ref.FindAllString(sql, -1)); stray != 0 {
			t.Errorf("%s: %d '$' outside parameter references", name, stray)
		}
	}
	db := pgmqtest.New(t)
	ctx := context.Background()
	for _, v := range []string{`plain`, `it's`, `back\slash`, `{"a,b","c\"d"}`, `$1`, `E'x'`, "new\nline", ``} {
		var got string
		sql := queuedepth.Inline(`SELECT $1::text || $2::text`, v, "!")
		if err := db.Pool.QueryRow(ctx, sql).Scan(&got); err != nil {
			t.Fatalf("%q: %v (%s)", v, err, sql)
		}
		if got != v+"!" {
			t.Errorf("%q came back as %q (%s)", v, got, sql)
		}
	}
}
