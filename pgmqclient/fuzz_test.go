package pgmqclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// Hostile input: queue names are the one piece of caller text that can end
// up in SQL. The fuzz targets check that every name is either refused with
// a typed error before any SQL is sent, or enters SQL only as a bind
// parameter or a quoted identifier that reads back as intended. The
// committed corpus (testdata/fuzz/) runs with every `go test`;
// scripts/test.sh also fuzzes each target briefly.

// fuzzSeeds are names worth starting from: valid edge cases and the
// classic ways out of an identifier or a string.
var fuzzSeeds = []string{
	"", "a", "_", "orders", "MixedCase", "ORDERS_2", "q1_2_3", "_private",
	strings.Repeat("x", pgmqclient.MaxQueueNameLength),
	strings.Repeat("x", pgmqclient.MaxQueueNameLength+1),
	"1abc", "a b", "a-b", "a.b", `a"b`, `"`, `""`, `x"; DROP TABLE y; --`,
	"x'--", "$1", "a;b", "a\x00b", "a\nb", "名前", "café", "İstanbul", "\xff\xfe",
	"select", "pgmq", "q_", "A" + strings.Repeat("é", 23),
	"nc-dash", "Mixed-Case", "-", "--", "a--b", "x-", "-x", "a- -b", "I", "tab\there",
	strings.Repeat("-x", pgmqclient.MaxQueueNameLength/2) + "-",
}

// documented is the rule ValidateQueueName documents, written again
// independently: PGMQ's (at most 47 characters, none of $ ; ' and no --)
// plus not empty, ASCII only and no NUL.
func documented(name string) bool {
	if name == "" || len(name) > 47 || strings.ContainsAny(name, "$;'\x00") || strings.Contains(name, "--") {
		return false
	}
	for _, r := range name {
		if r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

func FuzzValidateQueueName(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := pgmqclient.ValidateQueueName(name)
		if want := documented(name); (err == nil) != want {
			t.Fatalf("ValidateQueueName(%q) = %v; the documented rule says valid=%v", name, err, want)
		}
		if err != nil {
			checkRefusal(t, name, err)
			return
		}
		// Accepted names make a table that reads back as pgmq.q_<lower>,
		// whose derived names fit PostgreSQL's limit.
		lower := strings.ToLower(name)
		quoted := pgmqclient.QuoteTable("q_" + lower)
		parts, ok := parseQualified(quoted)
		if !ok || len(parts) != 2 || parts[0] != "pgmq" || parts[1] != "q_"+lower {
			t.Fatalf("table of %q = %s, reads back as %q", name, quoted, parts)
		}
		if n := len("q_" + lower + "_msg_id_seq"); n > 63 {
			t.Fatalf("%q derives a %d-byte identifier", name, n)
		}
	})
}

// checkRefusal checks a refused name's error: typed, naming the name, and
// safe to log (one line of valid UTF-8 whatever the name held).
func checkRefusal(t *testing.T, name string, err error) {
	t.Helper()
	var qe *pgmqclient.QueueNameError
	if !errors.Is(err, pgmqclient.ErrInvalidQueueName) || !errors.As(err, &qe) || qe.Name != name {
		t.Fatalf("refusal of %q is %#v, want a *QueueNameError naming it", name, err)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
		t.Fatalf("refusal of %q has an unsafe message %q", name, msg)
	}
}

func FuzzQuoteIdentifier(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	// What each call sends for a reference name, to compare against.
	refs := make([]*recorder, len(clientCalls))
	for i, call := range clientCalls {
		refs[i] = record(call.do, "reference_queue")
	}
	f.Fuzz(func(t *testing.T, name string) {
		valid := pgmqclient.ValidateQueueName(name) == nil
		if valid {
			// The table the server names comes back quoted as one identifier.
			rel := "q_" + strings.ToLower(name)
			if parts, ok := parseQualified(pgmqclient.QuoteTable(rel)); !ok || len(parts) != 2 || parts[1] != rel {
				t.Fatalf("quoted table of %q reads back as %q", name, parts)
			}
		}
		// Every Client call: an invalid name sends nothing; a valid one
		// reaches SQL only as a bind parameter or inside a quoted
		// identifier, so the statement text is the same as for any other
		// valid name once quoted identifiers are blanked out.
		for i, call := range clientCalls {
			got := record(call.do, name)
			if !valid {
				if len(got.sql) != 0 {
					t.Fatalf("%s(%q) sent %d statements for an invalid name", call.name, name, len(got.sql))
				}
				if !errors.Is(got.err, pgmqclient.ErrInvalidQueueName) {
					t.Fatalf("%s(%q) = %v, want ErrInvalidQueueName", call.name, name, got.err)
				}
				continue
			}
			ref := refs[i]
			if len(got.sql) == 0 || len(got.sql) != len(ref.sql) {
				t.Fatalf("%s(%q) sent %d statements, a reference name %d", call.name, name, len(got.sql), len(ref.sql))
			}
			for i := range got.sql {
				if a, b := blankQuoted(got.sql[i]), blankQuoted(ref.sql[i]); a != b {
					t.Fatalf("%s(%q): the name changed the statement text:\n%s\nvs\n%s", call.name, name, a, b)
				}
			}
		}
	})
}

// parseQualified reads a qualified name made only of double-quoted
// identifiers separated by dots, undoubling "" inside them. Anything else
// (a bare word, a stray quote, a character outside the quotes) is
// refused: that is text SQL would not read as this one identifier.
func parseQualified(s string) ([]string, bool) {
	var parts []string
	for {
		if !strings.HasPrefix(s, `"`) {
			return nil, false
		}
		s = s[1:]
		var b strings.Builder
		for {
			i := strings.IndexByte(s, '"')
			if i < 0 {
				return nil, false
			}
			b.WriteString(s[:i])
			s = s[i+1:]
			if strings.HasPrefix(s, `"`) {
				b.WriteByte('"')
				s = s[1:]
				continue
			}
			break
		}
		parts = append(parts, b.String())
		if s == "" {
			return parts, true
		}
		if s[0] != '.' {
			return nil, false
		}
		s = s[1:]
	}
}

// quotedIdent matches a double-quoted identifier, "" included.
var quotedIdent = regexp.MustCompile(`"(?:[^"]|"")*"`)

func blankQuoted(sql string) string { return quotedIdent.ReplaceAllString(sql, `"?"`) }

// recorder is a DB that records statements and runs none: the fuzz loop
// makes hundreds of thousands of calls, far more than a server could take,
// and only needs to see what would be sent. What the server makes of real
// quoted names is checked against PostgreSQL by
// TestQuotedNamesReadBackInPostgres.
type recorder struct {
	sql []string
	err error
}

var errRecorded = errors.New("recorded, not run")

func (r *recorder) Exec(_ context.Context, sql string, _ ...any) (pgconn.CommandTag, error) {
	r.sql = append(r.sql, sql)
	return pgconn.CommandTag{}, errRecorded
}

func (r *recorder) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	r.sql = append(r.sql, sql)
	return nil, errRecorded
}

func (r *recorder) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	r.sql = append(r.sql, sql)
	return failedRow{}
}

type failedRow struct{}

func (failedRow) Scan(...any) error { return errRecorded }

func record(do func(*pgmqclient.Client, string) error, name string) *recorder {
	r := &recorder{}
	r.err = do(pgmqclient.New(r), name)
	return r
}

// clientCalls are the Client methods that take a queue name, with valid
// values for everything else.
var clientCalls = func() []struct {
	name string
	do   func(*pgmqclient.Client, string) error
} {
	ctx := context.Background()
	msg := json.RawMessage(`{"k":1}`)
	type call = struct {
		name string
		do   func(*pgmqclient.Client, string) error
	}
	return []call{
		{"CreateQueue", func(c *pgmqclient.Client, q string) error { return c.CreateQueue(ctx, q) }},
		{"CreateUnloggedQueue", func(c *pgmqclient.Client, q string) error { return c.CreateUnloggedQueue(ctx, q) }},
		{"DropQueue", func(c *pgmqclient.Client, q string) error { _, err := c.DropQueue(ctx, q); return err }},
		{"PurgeQueue", func(c *pgmqclient.Client, q string) error { _, err := c.PurgeQueue(ctx, q); return err }},
		{"Send", func(c *pgmqclient.Client, q string) error { _, err := c.Send(ctx, q, msg); return err }},
		{"SendBatch", func(c *pgmqclient.Client, q string) error {
			_, err := c.SendBatch(ctx, q, []json.RawMessage{msg, msg})
			return err
		}},
		{"Read", func(c *pgmqclient.Client, q string) error { _, err := c.Read(ctx, q, time.Second, 1); return err }},
		{"ReadWithPoll", func(c *pgmqclient.Client, q string) error {
			_, err := c.ReadWithPoll(ctx, q, time.Second, 1, time.Second, 100*time.Millisecond)
			return err
		}},
		{"Pop", func(c *pgmqclient.Client, q string) error { _, err := c.Pop(ctx, q, 1); return err }},
		{"Delete", func(c *pgmqclient.Client, q string) error { _, err := c.Delete(ctx, q, 1); return err }},
		{"DeleteBatch", func(c *pgmqclient.Client, q string) error { _, err := c.DeleteBatch(ctx, q, []int64{1, 2}); return err }},
		{"Archive", func(c *pgmqclient.Client, q string) error { _, err := c.Archive(ctx, q, 1); return err }},
		{"ArchiveBatch", func(c *pgmqclient.Client, q string) error {
			_, err := c.ArchiveBatch(ctx, q, []int64{1, 2})
			return err
		}},
		{"SetVisibilityTimeout", func(c *pgmqclient.Client, q string) error {
			_, err := c.SetVisibilityTimeout(ctx, q, 1, time.Second)
			return err
		}},
		{"Metrics", func(c *pgmqclient.Client, q string) error { _, err := c.Metrics(ctx, q); return err }},
		{"QueueSize", func(c *pgmqclient.Client, q string) error { _, err := c.QueueSize(ctx, q); return err }},
	}
}()

// corpusNames returns the seeds and every string in the committed corpus
// of the fuzz targets.
func corpusNames(t *testing.T) []string {
	t.Helper()
	names := append([]string(nil), fuzzSeeds...)
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s is not a one-string corpus entry", file)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		names = append(names, s)
	}
	return names
}

// The quoting the fuzz targets check in Go is also how PostgreSQL reads
// it: for every valid name of the corpus, the server parses the quoted
// table name back into pgmq and q_<lower>, and a statement using it fails
// only because the table is missing, not on syntax. Then a few valid names
// become real queues that a statement built the same way reads.
func TestQuotedNamesReadBackInPostgres(t *testing.T) {
	ctx, c, db := setup(t)
	valid := 0
	for _, name := range corpusNames(t) {
		if pgmqclient.ValidateQueueName(name) != nil {
			continue
		}
		valid++
		if _, err := pgmqclient.QueueTable(ctx, db.Pool, name); !errors.Is(err, pgmqclient.ErrQueueNotFound) {
			t.Fatalf("table of missing queue %q: %v, want ErrQueueNotFound", name, err)
		}
		quoted := pgmqclient.QuoteTable("q_" + strings.ToLower(name))
		var parts []string
		if err := db.Pool.QueryRow(ctx, "SELECT parse_ident($1)", quoted).Scan(&parts); err != nil {
			t.Fatalf("parse_ident(%s): %v", quoted, err)
		}
		if len(parts) != 2 || parts[0] != "pgmq" || parts[1] != "q_"+strings.ToLower(name) {
			t.Fatalf("PostgreSQL reads %s as %q", quoted, parts)
		}
		_, err := db.Pool.Exec(ctx, "SELECT 1 FROM "+quoted+" WHERE false")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Fatalf("SELECT FROM %s: %v, want undefined_table (42P01)", quoted, err)
		}
	}
	if valid < 20 {
		t.Fatalf("only %d valid names in the corpus", valid)
	}
	for _, name := range []string{"_", "A1", "select", "nc-dash", `a"b`, "1st", strings.Repeat("Z", pgmqclient.MaxQueueNameLength)} {
		if err := c.CreateQueue(ctx, name); err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
		table, err := pgmqclient.QueueTable(ctx, db.Pool, name)
		if err != nil {
			t.Fatalf("table of %q: %v", name, err)
		}
		if want := pgmqclient.QuoteTable("q_" + strings.ToLower(name)); table != want {
			t.Fatalf("table of %q = %s, want %s", name, table, want)
		}
		sendN(t, ctx, c, name, 2)
		if n := size(t, ctx, c, name); n != 2 {
			t.Fatalf("size of %q = %d, want 2", name, n)
		}
	}
}
