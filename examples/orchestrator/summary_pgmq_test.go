package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// summaryLines returns the summary and stopped lines logged so far.
func summaryLines(out string) []string {
	var lines []string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, "msg=summary ") || strings.Contains(l, "msg=stopped ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// Every summary line says what the queue runs on: the PGMQ extension, a
// SQL install of PGMQ, or the project's compat schema, which is not PGMQ
// and is named so that nobody mistakes a demo on it for one on PGMQ.
func TestSummaryNamesThePGMQInstall(t *testing.T) {
	db := pgmqtest.New(t)
	want := map[string]string{
		pgmqtest.InstallCompat:    `pgmq="compat schema (not PGMQ)"`,
		pgmqtest.InstallSQLFile:   `pgmq="SQL install"`,
		pgmqtest.InstallExtension: `pgmq="extension `,
	}[db.Install]
	cfg := testConfig(db.URL)
	cfg.Summary = 100 * time.Millisecond
	r := start(t, cfg)
	waitFor(t, 30*time.Second, "three summary lines", func() bool { return len(summaryLines(r.out.String())) >= 3 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	lines := summaryLines(r.out.String())
	for _, l := range lines {
		if !strings.Contains(l, want) || !strings.Contains(l, "database=ok") {
			t.Errorf("PGMQ installed by %s: summary line without %s and database=ok:\n%s", db.Install, want, l)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "msg=stopped") {
		t.Errorf("last summary line is not the stopped one: %s", last)
	}
}

// On a database without PGMQ the orchestrator says where it looked (the
// database, the user and the server) and keeps saying on every summary
// line that the database answers but PGMQ is missing.
func TestMissingPGMQNamesTheDatabase(t *testing.T) {
	db := pgmqtest.New(t)
	db.RemovePGMQ(t)
	cfg := testConfig(db.URL)
	cfg.Summary = 100 * time.Millisecond
	r := start(t, cfg)
	cc := db.Pool.Config().ConnConfig
	where := regexp.QuoteMeta(fmt.Sprintf(`PGMQ is not installed in database \"%s\" (user \"%s\") on %s:%d`, db.Name, cc.User, cc.Host, cc.Port))
	setup := regexp.MustCompile(`msg=setup err=.*` + where)
	waitFor(t, 30*time.Second, "the setup error and two summary lines", func() bool {
		s := r.out.String()
		return setup.MatchString(s) && len(summaryLines(s)) >= 2
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, l := range summaryLines(r.out.String()) {
		if !strings.Contains(l, "database=error pgmq=missing") {
			t.Errorf("summary line without database=error pgmq=missing:\n%s", l)
		}
	}
}
