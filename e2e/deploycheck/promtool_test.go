package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// promtool returns the promtool executable: $PROMTOOL_BIN or /usr/bin/promtool.
func promtool(t *testing.T) string {
	t.Helper()
	return stack.RequireTool(t, "promtool", "PROMTOOL_BIN", "/usr/bin/promtool")
}

// TestPromtool checks the rules, runs their unit tests and checks the
// configuration: the shipped file for syntax (its rule path only exists in
// the container), and the harness' local rewrite of it in full.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	local := filepath.Join(t.TempDir(), "prometheus.yml")
	cfg, err := stack.LocalPrometheusConfig(filepath.Join(dir, "prometheus.yml"), filepath.Join(dir, "alerts.yml"),
		map[string]string{"otel-collector:8889": "127.0.0.1:8889", "otel-collector:8888": "127.0.0.1:8888"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "--syntax-only", "prometheus.yml"},
		{"check", "config", local},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %v: %v\n%s", args, err, out)
			}
		})
	}
}
