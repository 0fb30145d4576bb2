package apideps

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// setupSide are the module's packages that may use the SDK: the
// application side, the examples and the test tools.
var setupSide = []string{
	"github.com/pgmqotel/pgmqotel/otelsetup",
	"github.com/pgmqotel/pgmqotel/examples/",
	"github.com/pgmqotel/pgmqotel/internal/testkit/",
	"github.com/pgmqotel/pgmqotel/scripts/",
}

// Every package of the module but the setup side is instrumentation, and
// depends on the OpenTelemetry API only: a package added later is held to
// it without a word here.
func TestInstrumentationIsAPIOnly(t *testing.T) {
	// -e: a package another test is writing (the README's snippets, among
	// the test tools) must not fail the listing.
	out, err := exec.Command("go", "list", "-e", "github.com/pgmqotel/pgmqotel/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var checked []string
	for path := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		setup := false
		for _, s := range setupSide {
			setup = setup || path == strings.TrimSuffix(s, "/") || strings.HasPrefix(path, s)
		}
		if !setup {
			checked = append(checked, path)
		}
	}
	for _, want := range []string{"otelmetrics", "otelpgmq", "pgmqclient"} {
		found := false
		for _, c := range checked {
			found = found || c == "github.com/pgmqotel/pgmqotel/"+want
		}
		if !found {
			t.Fatalf("%s is not among the packages checked: %v", want, checked)
		}
	}
	for _, path := range checked {
		Check(t, path)
		t.Logf("%s: %d non-standard packages", path, NonStandard(t, path))
	}
}

// The check fails on a package that reaches the SDK, naming the import
// that crosses the line: examples/minimal imports otelsetup.
func TestCheckCatchesSDK(t *testing.T) {
	var rec recorder
	Check(&rec, "github.com/pgmqotel/pgmqotel/examples/minimal")
	want := "github.com/pgmqotel/pgmqotel/examples/minimal imports github.com/pgmqotel/pgmqotel/otelsetup,"
	if len(rec.errs) != 1 || !strings.HasPrefix(rec.errs[0], want) {
		t.Fatalf("errors %q, want one starting %q", rec.errs, want)
	}
}

// recorder is a testing.TB that keeps its errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

var (
	depsTableRE = regexp.MustCompile("(?s)<!-- deps:start -->(.*)<!-- deps:end -->")
	depsRowRE   = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*([0-9]+)\\s*\\|")
)

// The README's table of dependency counts (between <!-- deps:start -->
// and <!-- deps:end -->) gives the counts of the code as it is.
func TestReadmeCountsMatch(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := depsTableRE.FindSubmatch(readme)
	if table == nil {
		t.Fatal("README.md has no <!-- deps:start --> ... <!-- deps:end --> table")
	}
	rows := 0
	for _, line := range strings.Split(string(table[1]), "\n") {
		m := depsRowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		want, _ := strconv.Atoi(m[2])
		if got := NonStandard(t, "github.com/pgmqotel/pgmqotel/"+m[1]); got != want {
			t.Errorf("README.md says %s brings in %d non-standard packages; go list -deps says %d", m[1], want, got)
		}
	}
	if rows == 0 {
		t.Fatal("the README's dependency table has no rows")
	}
}
