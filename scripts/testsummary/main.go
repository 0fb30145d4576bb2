// Command testsummary reads `go test -json` output and says what was
// tested. scripts/test.sh uses it in two ways:
//
//	go test -json ./... | testsummary -stream [-v]   # go test's usual output, live
//	testsummary FILE...                              # the summary of saved runs
//
// -stream prints what plain `go test` prints (package results, and the
// output of failing tests; with -v everything) and exits 0: the caller
// keeps go test's exit status. The summary lists which PGMQ the database
// tests ran against (as pgmqtest logged it: extension and its version, a
// SQL install file and its version, or the project's compat schema), the
// skipped tests grouped by reason, and ends with one line that CI reads:
//
//	tests: 812 passed, 0 failed, 3 skipped
//
// Tests are counted with their subtests, each once.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of test2json output.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	stream := flag.Bool("stream", false, "print go test's usual output from stdin")
	verbose := flag.Bool("v", false, "with -stream: print every test's output")
	flag.Parse()
	if *stream {
		passThrough(os.Stdin, os.Stdout, *verbose)
		return
	}
	var s summary
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(2)
		}
		s.read(f)
		f.Close()
	}
	s.print(os.Stdout)
}

// passThrough prints what go test without -json would: package lines as
// they come, a test's output only if it fails (or with verbose).
func passThrough(r io.Reader, w io.Writer, verbose bool) {
	held := map[string][]string{} // package/test -> output so far
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Fprintln(w, sc.Text()) // not an event: pass it on
			continue
		}
		key := e.Package + "/" + e.Test
		switch {
		case e.Test == "" && e.Action == "output" && !verbose && quiet[e.Output]:
			// Lines the test binary prints that go test hides without -v.
		case e.Action == "build-output" || e.Test == "" && e.Action == "output":
			fmt.Fprint(w, e.Output)
		case e.Action == "output" && verbose:
			fmt.Fprint(w, e.Output)
		case e.Action == "output":
			held[key] = append(held[key], e.Output)
		case e.Action == "fail" && e.Test != "" && !verbose:
			fmt.Fprint(w, strings.Join(held[key], ""))
			delete(held, key)
		case e.Action == "pass" || e.Action == "skip":
			delete(held, key)
		}
	}
}

// quiet are package-level lines plain go test does not show.
var quiet = map[string]bool{"PASS\n": true, "testing: warning: no tests to run\n": true}

// summary accumulates saved runs.
type summary struct {
	passed, failed, skipped int
	failures                []string
	skipReasons             map[string]int
	pgmq                    map[string]int // how PGMQ was installed -> databases
	lastOutput              map[string]string
}

// installed matches pgmqtest's log line.
var installed = regexp.MustCompile(`pgmqtest: database \S+, PGMQ installed by (\w[\w-]*)(?: \((.*)\))?`)

// fileLine is the "file_test.go:12: " prefix of a t.Log line.
var fileLine = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)

func (s *summary) read(r io.Reader) {
	if s.skipReasons == nil {
		s.skipReasons, s.pgmq, s.lastOutput = map[string]int{}, map[string]int{}, map[string]string{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "output":
			line := strings.TrimSpace(e.Output)
			if m := installed.FindStringSubmatch(line); m != nil {
				s.pgmq[describe(m[1], m[2])]++
			}
			if fileLine.MatchString(e.Output) {
				s.lastOutput[key] = strings.TrimSpace(fileLine.ReplaceAllString(e.Output, ""))
			}
		case "pass":
			s.passed++
		case "fail":
			s.failed++
			s.failures = append(s.failures, e.Package+" "+e.Test)
		case "skip":
			s.skipped++
			reason := s.lastOutput[key]
			if reason == "" {
				reason = "(no reason given)"
			}
			s.skipReasons[e.Package+": "+reason]++
		}
	}
}

// describe turns pgmqtest's method and detail into one line.
func describe(method, detail string) string {
	switch method {
	case "compat":
		return "compat: the project's own PGMQ-compatible schema, NOT PGMQ (no pgmq extension, PGMQ_SQL not set or failing); " +
			"set PGMQ_SQL=path/to/pgmq.sql to test against PGMQ"
	case "sql-file":
		return "sql-file: PGMQ's SQL install file " + detail
	case "extension":
		return "extension: CREATE EXTENSION pgmq " + detail
	}
	return method + " " + detail
}

func (s *summary) print(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "=== What was tested")
	if len(s.pgmq) == 0 {
		fmt.Fprintln(w, "PGMQ: no database test ran (see the skips below)")
	}
	for _, k := range sortedKeys(s.pgmq) {
		fmt.Fprintf(w, "PGMQ for %d test databases: %s\n", s.pgmq[k], k)
	}
	if len(s.skipReasons) > 0 {
		fmt.Fprintf(w, "Skipped (%d), by reason:\n", s.skipped)
		for _, k := range sortedKeys(s.skipReasons) {
			fmt.Fprintf(w, "  %3d  %s\n", s.skipReasons[k], k)
		}
	}
	if len(s.failures) > 0 {
		fmt.Fprintf(w, "Failed (%d):\n", len(s.failures))
		for _, f := range s.failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
