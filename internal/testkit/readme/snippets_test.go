// The tests that keep the README's Go snippets copyable: each compiles as
// the complete file it is, and each program among them runs and delivers
// its telemetry.
package readme

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// snippet is one ```go block of the README or of a document in docs/.
type snippet struct {
	file string // relative to the module's root
	line int    // where the block starts, for messages
	code string
}

// where names the block for messages and subtests.
func (s snippet) where() string { return fmt.Sprintf("%s:%d", s.file, s.line) }

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

// moduleRoot is the directory of the module's go.mod.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// readmeBlocks returns the Go blocks of the module's README.md and of the
// documents in docs/.
func readmeBlocks(t *testing.T) []snippet {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(moduleRoot(), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []snippet
	for _, path := range append([]string{filepath.Join(moduleRoot(), "README.md")}, docs...) {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(moduleRoot(), path)
		for _, b := range goBlocks(string(text)) {
			b.file = rel
			blocks = append(blocks, b)
		}
	}
	if len(blocks) < 3 {
		t.Fatalf("found %d Go blocks in README.md and docs/", len(blocks))
	}
	return blocks
}

var (
	packageClause = regexp.MustCompile(`(?m)^package \w+`)
	funcMain      = regexp.MustCompile(`(?m)^func main\(\) \{`)
)

// Every Go block of the README is a complete file, package clause and
// imports included, that builds and passes go vet against the module as
// it is, on its own: a reader can copy any one of them as it stands.
func TestReadmeSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds packages")
	}
	for _, b := range readmeBlocks(t) {
		t.Run(b.where(), func(t *testing.T) {
			if out, err := buildSnippet(t, b, ""); err != nil {
				t.Fatalf("the Go block at %s does not build as it stands:\n%s", b.where(), out)
			}
		})
	}
}

// The checker catches what the README once said: ProcessorStarted takes
// the kind's name, not the *ProcessorKind; and a block without its
// package clause and imports.
func TestReadmeCheckerCatchesWrongCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds packages")
	}
	for _, tc := range []struct {
		code, want string
	}{
		{`package x

import "github.com/pgmqotel/pgmqotel/otelmetrics"

func f(m *otelmetrics.Metrics) {
	kind := m.Processor("x")
	done := m.ProcessorStarted(kind)
	defer done()
}
`, "cannot use kind"},
		{"done := m.ProcessorStarted(\"x\")\ndefer done()\n", "not a complete Go file"},
	} {
		out, err := buildSnippet(t, snippet{line: 1, code: tc.code}, "")
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("wrong code built (%v), or not for the reason expected (%q):\n%s", err, tc.want, out)
		}
	}
}

// buildSnippet builds and vets b as the only file of a temporary package
// inside the module, and, when bin is not empty, links its program there.
// It returns the tools' output.
func buildSnippet(t *testing.T, b snippet, bin string) (string, error) {
	t.Helper()
	if !packageClause.MatchString(b.code) {
		return "not a complete Go file: no package clause (and so no imports)", fmt.Errorf("line %d", b.line)
	}
	// Inside the module, so that its packages resolve; among the test
	// tools, which other checks of the module's packages leave out.
	root := moduleRoot()
	dir, err := os.MkdirTemp(filepath.Join(root, "internal", "testkit", "readme"), "snippet-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "snippet.go"), []byte(b.code), 0o644); err != nil {
		t.Fatal(err)
	}
	if bin == "" {
		bin = os.DevNull // a program is linked, and thrown away
	}
	pkg, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := goCmd(root, "build", "-o", bin, "./"+pkg); err != nil {
		return out, err
	}
	return goCmd(root, "vet", "./"+pkg)
}

// Every program of the README (a block with func main) runs to its end
// against a fresh database and an OTLP endpoint, and everything it made
// arrives there. The exports are timed so that only the shutdown delivers
// them (an export interval and a span batch delay of an hour): a program
// that does not shut its tracer provider down loses its spans; one that
// closes otelmetrics before shutting the meter provider down exports
// none of its instruments.
func TestReadmeProgramsDeliver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs programs")
	}
	ran := 0
	for _, b := range readmeBlocks(t) {
		if !funcMain.MatchString(b.code) {
			continue
		}
		ran++
		t.Run(b.where(), func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "snippet")
			if out, err := buildSnippet(t, b, bin); err != nil {
				t.Fatalf("does not build:\n%s", out)
			}
			db := pgmqtest.New(t)
			sink := startSink(t)
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(),
				"DATABASE_URL="+db.URL,
				"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+sink.addr,
				"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
				"OTEL_METRICS_EXPORTER=otlp",
				"OTEL_TRACES_EXPORTER=otlp",
				"OTEL_SDK_DISABLED=false",
				"OTEL_METRIC_EXPORT_INTERVAL=3600000",
				"OTEL_BSP_SCHEDULE_DELAY=3600000",
				"OTEL_SERVICE_NAME=readme-snippet")
			out, err := runWithin(cmd, 2*time.Minute)
			if err != nil {
				t.Fatalf("the program failed: %v\n%s", err, out)
			}
			if strings.Contains(b.code, "NewMeterProvider(") && !sink.hasMetric("orchestration.processor.active") {
				t.Errorf("no orchestration.processor.active arrived (metrics: %v): is the meter provider shut down, before Metrics.Close?\n%s",
					sink.metricNames(), out)
			}
			if strings.Contains(b.code, "NewTracerProvider(") {
				sends, processes := sink.spansNamed("send "), sink.spansNamed("process ")
				if sends == 0 || processes != sends {
					t.Errorf("%d send and %d process spans arrived, want as many of each and some: is the tracer provider shut down?\n%s",
						sends, processes, out)
				}
			}
		})
	}
	if ran == 0 {
		t.Fatal("the README has no program (a Go block with func main)")
	}
}

// runWithin runs cmd, killing it after d.
func runWithin(cmd *exec.Cmd, d time.Duration) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("still running after %v", d)
	}
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...) // the go on PATH, as for go test itself
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
