package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// collectorSources are the files whose content decides the Collector
// binary, relative to the e2e module. The repository's own Go code it
// builds in (the pgmq receiver and the packages it imports, through the
// e2e module's replace directives) is hashed too: see localSources.
var collectorSources = []string{"go.mod", "go.sum", "cmd/otelcol/main.go"}

// localSources lists the repository's Go sources and module files outside
// e2e/ and examples/ (tests and test data left out), when e2eDir is the
// e2e module of a repository: whatever of them the Collector builds in,
// a change to any rebuilds it.
func localSources(e2eDir string) ([]string, error) {
	root := filepath.Dir(e2eDir)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, nil // not in a repository (a test's copy of the sources)
	}
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" ||
				path == e2eDir || path == filepath.Join(root, "examples")) {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}

// cacheDir is where built Collectors are kept between starts:
// $XDG_CACHE_HOME/pgmqotel, else ~/.cache/pgmqotel.
func cacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "pgmqotel"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("collector cache: %w (set XDG_CACHE_HOME or OTELCOL_BIN)", err)
	}
	return filepath.Join(home, ".cache", "pgmqotel"), nil
}

// sourceKey hashes the Collector's sources and the Go toolchain, so a
// changed go.mod (a new Collector release) or Go version builds anew.
func sourceKey(e2eDir string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	local, err := localSources(e2eDir)
	if err != nil {
		return "", fmt.Errorf("collector cache key: %w", err)
	}
	names := slices.Clone(collectorSources)
	for _, p := range local {
		rel, err := filepath.Rel(e2eDir, p)
		if err != nil {
			return "", fmt.Errorf("collector cache key: %w", err)
		}
		names = append(names, rel)
	}
	for _, name := range names {
		f, err := os.Open(filepath.Join(e2eDir, name))
		if err != nil {
			return "", fmt.Errorf("collector cache key: %w", err)
		}
		fmt.Fprintln(h, name)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("collector cache key: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// cachedCollector returns the path of a Collector built from the current
// sources, building it into the cache first if needed (and saying so:
// the first build takes 3 to 4 minutes). The binary is moved into place
// only when complete, so an interrupted build leaves nothing half-built.
func cachedCollector(ctx context.Context, e2eDir string, say func(string, ...any)) (string, error) {
	key, err := sourceKey(e2eDir)
	if err != nil {
		return "", err
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "otelcol-"+key)
	if _, err := os.Stat(bin); err == nil {
		say("collector: cached build %s\n", bin)
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("collector cache: %w", err)
	}
	say("collector: building the OpenTelemetry Collector from e2e/cmd/otelcol (the first time takes 3-4 minutes; kept in %s for later starts)...\n", dir)
	began := time.Now()
	tmp := bin + ".partial"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/otelcol")
	cmd.Dir = e2eDir
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build collector: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("collector cache: %w", err)
	}
	say("collector: built in %v\n", time.Since(began).Round(time.Second))
	return bin, nil
}
