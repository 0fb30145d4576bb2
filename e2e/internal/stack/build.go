package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// RepoRoot returns the repository root: the nearest directory above the
// working directory holding collector-config.yaml and the e2e module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if fileExists(filepath.Join(dir, "collector-config.yaml")) &&
			fileExists(filepath.Join(dir, "e2e", "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no collector-config.yaml above the working directory")
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// build caches the collector build for the whole test process: tests share
// one binary rather than linking a 50 MB executable each.
var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary, removed by Main
	path string
	err  error
}

// CollectorBinary returns the path of the collector executable, building
// e2e/cmd/otelcol on first use. OTELCOL_BIN, when set, names a prebuilt
// binary instead.
func CollectorBinary(ctx context.Context) (string, error) {
	if bin := os.Getenv("OTELCOL_BIN"); bin != "" {
		if !fileExists(bin) {
			return "", fmt.Errorf("collector binary: OTELCOL_BIN=%s does not exist", bin)
		}
		return bin, nil
	}
	build.once.Do(func() {
		build.path, build.err = buildCollector(ctx)
	})
	return build.path, build.err
}

func buildCollector(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "pgmqotel-otelcol-")
	if err != nil {
		return "", fmt.Errorf("build collector: %w", err)
	}
	build.dir = dir
	bin := filepath.Join(dir, "otelcol")
	// No -race: the collector is not our code, and a race build takes
	// minutes. GOFLAGS from the environment still applies.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/otelcol")
	cmd.Dir = filepath.Join(root, "e2e")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build collector: %w\n%s", err, out)
	}
	return bin, nil
}

// RemoveBuild deletes the collector built by CollectorBinary, if any. Main
// calls it; call it yourself from a custom TestMain.
func RemoveBuild() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}
