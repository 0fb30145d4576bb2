// The test that compiles the README's Go snippets.
package readme

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// snippetImports are the packages README snippets may use; the ones a
// snippet file does not use are dropped before the final build.
var snippetImports = []string{
	"context", "encoding/json", "errors", "fmt", "log", "net/http", "os", "time",
	"github.com/jackc/pgx/v5/pgxpool",
	"github.com/pgmqotel/pgmqotel/otelmetrics",
	"github.com/pgmqotel/pgmqotel/otelpgmq",
	"github.com/pgmqotel/pgmqotel/pgmqclient",
	"go.opentelemetry.io/otel",
	sdkmetric + " go.opentelemetry.io/otel/sdk/metric",
}

const sdkmetric = "sdkmetric"

// snippet is one ```go block of the README.
type snippet struct {
	line int // where the block starts, for messages
	code string
}

// goBlocks returns the README's ```go blocks.
func goBlocks(readme string) []snippet {
	var (
		out   []snippet
		cur   *strings.Builder
		start int
	)
	for i, l := range strings.Split(readme, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```go":
			cur, start = &strings.Builder{}, i+1
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, snippet{line: start, code: cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	return out
}

// Every Go snippet in the README compiles (and passes go vet) against the
// module as it is: each block becomes the body of a function with ctx and
// pool in scope, in a temporary package inside the module. A snippet
// that declares top-level things (func, type) is kept as a file.
func TestReadmeSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(string(readme))
	if len(blocks) < 3 {
		t.Fatalf("found %d Go blocks in README.md", len(blocks))
	}
	if out, err := build(t, root, blocks); err != nil {
		t.Fatalf("README.md's Go snippets do not build:\n%s\n(block N of the README is snippetNN.go; line numbers are the wrapper's)", out)
	}
}

// The checker catches what the README once said: ProcessorStarted takes
// the kind's name, not the *ProcessorKind.
func TestReadmeCheckerCatchesWrongCall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	out, err := build(t, root, []snippet{{line: 1, code: "kind := m.Processor(\"x\")\ndone := m.ProcessorStarted(kind)\ndefer done()\n"}})
	if err == nil || !strings.Contains(out, "cannot use kind") {
		t.Fatalf("a wrong call built: %v\n%s", err, out)
	}
}

// build compiles and vets the blocks in a temporary package inside the
// module, returning the tool's output.
func build(t *testing.T, root string, blocks []snippet) (string, error) {
	t.Helper()
	dir, err := os.MkdirTemp(root, "readme-snippets-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	files := map[string]string{}
	for i, b := range blocks {
		files[fmt.Sprintf("snippet%02d.go", i)] = wrap(i, b)
	}
	for round := 0; ; round++ {
		for name, src := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// -e: every error at once, so one round fixes them all.
		out, err := goCmd(root, "build", "-gcflags=-e", "./"+filepath.Base(dir))
		if err == nil {
			return goCmd(root, "vet", "./"+filepath.Base(dir))
		}
		// Unused imports and variables are the wrapper's doing, not the
		// snippet's: fix them and try again.
		fixed := false
		matches := unused.FindAllStringSubmatch(out, -1)
		// Bottom up, so an inserted line does not move the next fix.
		slices.SortFunc(matches, func(a, b []string) int { return atoi(b[2]) - atoi(a[2]) })
		for _, m := range matches {
			name, src := m[1], files[m[1]]
			line := atoi(m[2])
			lines := strings.Split(src, "\n")
			switch {
			case m[4] != "": // "pkg" imported and not used
				lines[line-1] = "// " + lines[line-1]
			case m[5] != "": // declared and not used: x
				lines = append(lines[:line], append([]string{"_ = " + m[5]}, lines[line:]...)...)
			}
			files[name] = strings.Join(lines, "\n")
			fixed = true
		}
		if !fixed || round > 20 {
			return out, err
		}
	}
}

var unused = regexp.MustCompile(`(snippet\d+\.go):(\d+):(\d+): (?:("[^"]+" imported(?: as \w+)? and not used)|declared and not used: (\w+))`)

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// wrap makes a Go file of block i.
func wrap(i int, b snippet) string {
	var src bytes.Buffer
	fmt.Fprintf(&src, "// Code generated from README.md line %d. DO NOT EDIT.\n\npackage snippets\n\nimport (\n", b.line)
	for _, imp := range snippetImports {
		if strings.Contains(imp, " ") {
			fmt.Fprintf(&src, "\t%s %q\n", strings.Fields(imp)[0], strings.Fields(imp)[1])
		} else {
			fmt.Fprintf(&src, "\t%q\n", imp)
		}
	}
	src.WriteString(")\n\n")
	if regexp.MustCompile(`(?m)^(func|type|var|const) `).MatchString(b.code) {
		src.WriteString(b.code)
		return src.String()
	}
	// m is given unless the snippet makes its own.
	if regexp.MustCompile(`(?m)^\s*m(, \w+)? :=`).MatchString(b.code) {
		fmt.Fprintf(&src, "func snippet%02d(ctx context.Context, pool *pgxpool.Pool) error {\n\t_, _ = ctx, pool\n", i)
	} else {
		fmt.Fprintf(&src, "func snippet%02d(ctx context.Context, pool *pgxpool.Pool, m *otelmetrics.Metrics) error {\n\t_, _, _ = ctx, pool, m\n", i)
	}
	src.WriteString(b.code)
	src.WriteString("\treturn nil\n}\n")
	return src.String()
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...) // the go on PATH, as for go test itself
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
