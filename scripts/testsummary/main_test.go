package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real `go test -json` run of a small module with a pass, a failure, a
// skip with a reason and a pgmqtest-like log line, summarized.
func TestSummaryOfARealRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/sample\n\ngo 1.24\n")
	write("sample_test.go", `package sample

import "testing"

func TestPasses(t *testing.T) {
	t.Log("pgmqtest: database pgmqtest_1, PGMQ installed by sql-file (/x/pgmq-1.5.1.sql, version 1.5.1)")
	t.Run("sub", func(t *testing.T) {})
}
func TestFails(t *testing.T) { t.Error("boom") }
func TestSkips(t *testing.T) { t.Skip("PostgreSQL at 127.0.0.1:5432 is unreachable") }
`)
	cmd := exec.Command("go", "test", "-json", "./...")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err == nil {
		t.Fatal("go test passed a failing test")
	}

	var streamed bytes.Buffer
	passThrough(bytes.NewReader(out), &streamed, false)
	for _, want := range []string{"--- FAIL: TestFails", "boom", "FAIL\texample.com/sample"} {
		if !strings.Contains(streamed.String(), want) {
			t.Errorf("streamed output lacks %q:\n%s", want, streamed.String())
		}
	}
	if strings.Contains(streamed.String(), "pgmqtest: database") || strings.Contains(streamed.String(), "PASS\n") {
		t.Errorf("a passing test's log was printed without -v:\n%s", streamed.String())
	}

	var s summary
	s.read(bytes.NewReader(out))
	var sum bytes.Buffer
	s.print(&sum)
	text := sum.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if last := lines[len(lines)-1]; last != "tests: 2 passed, 1 failed, 1 skipped" {
		t.Errorf("last line %q\n%s", last, text)
	}
	for _, want := range []string{
		"PGMQ for 1 test databases: sql-file: PGMQ's SQL install file /x/pgmq-1.5.1.sql, version 1.5.1",
		"1  example.com/sample: PostgreSQL at 127.0.0.1:5432 is unreachable",
		"example.com/sample TestFails",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}
