// Package apideps holds the instrumentation packages to their promise:
// they depend on the OpenTelemetry API only (otel, metric, trace,
// attribute, propagation, codes, semconv), pgx and each other, never on
// the SDK, an exporter, gRPC or the Prometheus client, so that importing
// them leaves the choice of all that to the application. Check runs `go
// list -deps` (tests left out) and fails on any package of Forbidden.
package apideps

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Forbidden are the import path prefixes an instrumentation package must
// not reach: the SDK, exporters and what comes with them (OTLP protos,
// gRPC, the Prometheus client), contrib (autoexport, autoprop), and the
// application side of this module.
var Forbidden = []string{
	"go.opentelemetry.io/otel/sdk",
	"go.opentelemetry.io/otel/exporters/",
	"go.opentelemetry.io/contrib/",
	"go.opentelemetry.io/proto/",
	"google.golang.org/grpc",
	"github.com/prometheus/",
	"github.com/pgmqotel/pgmqotel/otelsetup",
}

// forbidden reports whether path matches a prefix of Forbidden.
func forbidden(path string) bool {
	return slices.ContainsFunc(Forbidden, func(p string) bool {
		return path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, p)
	})
}

// pkg is one package of `go list -deps`.
type pkg struct {
	path     string
	standard bool
	root     bool // named by the patterns, not only a dependency
	imports  []string
}

// deps lists the dependencies of patterns, themselves included.
func deps(t testing.TB, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{.DepOnly}} {{join .Imports \" \"}}"}, patterns...)
	out, err := exec.Command("go", args...).Output() // the go on PATH, as for go test itself
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	var list []pkg
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 {
			list = append(list, pkg{path: f[0], standard: f[1] == "true", root: f[2] == "false", imports: f[3:]})
		}
	}
	return list
}

// NonStandard counts the packages outside the standard library that
// pattern depends on, itself included (the figure the README gives).
func NonStandard(t testing.TB, pattern string) int {
	t.Helper()
	n := 0
	for _, p := range deps(t, pattern) {
		if !p.standard {
			n++
		}
	}
	return n
}

// Check fails t for every forbidden package that the patterns' packages
// reach, naming the allowed package that imports it: where the line is
// crossed, not everything behind it.
func Check(t testing.TB, patterns ...string) {
	t.Helper()
	list := deps(t, patterns...)
	imports := map[string][]string{}
	var queue []string
	for _, p := range list {
		imports[p.path] = p.imports
		if p.root {
			queue = append(queue, p.path)
		}
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		if forbidden(path) {
			t.Errorf("%s is among the packages checked, and is not API-only", path)
			continue
		}
		for _, imp := range imports[path] {
			if forbidden(imp) {
				t.Errorf("%s imports %s, which instrumentation must not depend on", path, imp)
				continue
			}
			queue = append(queue, imp)
		}
	}
}
