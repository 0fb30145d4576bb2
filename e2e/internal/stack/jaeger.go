package stack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// jaegerModule is the module (inside the repository) whose tool directive
// pins Jaeger v2: github.com/jaegertracing/jaeger/cmd/jaeger v1.76.0.
const jaegerModule = "e2e/tools/jaeger"

// jaegerBuildTimeout bounds a cold Jaeger build: about 8 minutes on an idle
// 2-core machine, twice that under load.
const jaegerBuildTimeout = 30 * time.Minute

var jaegerBuild struct {
	once sync.Once
	path string
	err  error
}

// JaegerBinary returns the path of a Jaeger v2 executable. JAEGER_BIN, when
// set, names a prebuilt one. Otherwise it is built from e2e/tools/jaeger
// into the user's cache directory (PGMQOTEL_CACHE, else
// $XDG_CACHE_HOME/pgmqotel or ~/.cache/pgmqotel), under a name that hashes
// the module's go.mod and go.sum, and reused by later runs: unlike the
// collector, a cold build takes minutes.
func JaegerBinary(ctx context.Context) (string, error) {
	if bin := os.Getenv("JAEGER_BIN"); bin != "" {
		if !fileExists(bin) {
			return "", fmt.Errorf("jaeger binary: JAEGER_BIN=%s does not exist", bin)
		}
		return bin, nil
	}
	jaegerBuild.once.Do(func() {
		jaegerBuild.path, jaegerBuild.err = buildJaeger(ctx)
	})
	return jaegerBuild.path, jaegerBuild.err
}

func cacheDir() (string, error) {
	if d := os.Getenv("PGMQOTEL_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "pgmqotel"), nil
}

// JaegerCached returns the Jaeger executable JaegerBinary would return
// and whether it is there already, so a caller can say before a cold
// build that it takes minutes: JAEGER_BIN when set, else the cached build
// for the current e2e/tools/jaeger.
func JaegerCached() (bin string, cached bool, err error) {
	if bin := os.Getenv("JAEGER_BIN"); bin != "" {
		return bin, fileExists(bin), nil
	}
	bin, _, err = jaegerCachePath()
	if err != nil {
		return "", false, err
	}
	return bin, fileExists(bin), nil
}

// jaegerCachePath returns where the Jaeger build for the current
// e2e/tools/jaeger (a hash of its go.mod and go.sum) is kept, and that
// module's directory.
func jaegerCachePath() (bin, mod string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	mod = filepath.Join(root, jaegerModule)
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			return "", "", fmt.Errorf("build jaeger: %w", err)
		}
		h.Write(b)
	}
	dir, err := cacheDir()
	if err != nil {
		return "", "", fmt.Errorf("build jaeger: cache directory: %w", err)
	}
	return filepath.Join(dir, "jaeger-"+hex.EncodeToString(h.Sum(nil))[:16]), mod, nil
}

func buildJaeger(ctx context.Context) (string, error) {
	bin, mod, err := jaegerCachePath()
	if err != nil {
		return "", err
	}
	if fileExists(bin) {
		return bin, nil
	}
	dir := filepath.Dir(bin)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build jaeger: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "jaeger-build-")
	if err != nil {
		return "", fmt.Errorf("build jaeger: %w", err)
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name()) // gone after the rename, or a failed build
	ctx, cancel := context.WithTimeout(ctx, jaegerBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), "github.com/jaegertracing/jaeger/cmd/jaeger")
	cmd.Dir = mod
	// Not the test's flags (-race would make it a much longer build).
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build jaeger: %w\n%s", err, out)
	}
	// Atomic: a concurrent run sees the finished binary or none.
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("build jaeger: %w", err)
	}
	return bin, nil
}

// Jaeger is a running Jaeger v2 with memory storage, started by
// StartJaeger. Addresses are host:port on 127.0.0.1.
type Jaeger struct {
	OTLPAddr  string // OTLP gRPC receiver
	QueryURL  string // HTTP query API and UI, http://host:port
	HealthURL string
	LogPath   string
	proc      *process
}

// StartJaeger builds (or finds) Jaeger and starts it with
// e2e/tools/jaeger/config.yaml on fresh ports, logging into dir, and waits
// until it is healthy. Stop it with Stop.
func StartJaeger(ctx context.Context, dir string) (*Jaeger, error) {
	return StartJaegerAt(ctx, dir, "")
}

// StartJaegerAt is StartJaeger with the query API and UI on queryAddr
// (host:port; empty for a fresh port), for a person to open: the other
// ports stay fresh.
func StartJaegerAt(ctx context.Context, dir, queryAddr string) (*Jaeger, error) {
	bin, err := JaegerBinary(ctx)
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(root, jaegerModule, "config.yaml")
	var lastErr error
	for attempt := range startAttempts {
		addrs, err := freeAddrs(4)
		if err != nil {
			return nil, err
		}
		if queryAddr != "" {
			addrs[1] = queryAddr
		}
		j := &Jaeger{
			OTLPAddr:  addrs[0],
			QueryURL:  "http://" + addrs[1],
			HealthURL: "http://" + addrs[3] + "/status",
			LogPath:   filepath.Join(dir, fmt.Sprintf("jaeger-%d.log", attempt)),
		}
		env := []string{
			"JAEGER_OTLP_GRPC_ENDPOINT=" + addrs[0],
			"JAEGER_QUERY_HTTP_ENDPOINT=" + addrs[1],
			"JAEGER_QUERY_GRPC_ENDPOINT=" + addrs[2],
			"JAEGER_HEALTH_ENDPOINT=" + addrs[3],
		}
		if j.proc, err = startProcess("jaeger", bin, []string{"--config", cfg}, env, j.LogPath); err != nil {
			return nil, err
		}
		if lastErr = poll(ctx, "wait for jaeger", j.proc, func(ctx context.Context) error {
			return httpOK(ctx, j.HealthURL)
		}); lastErr == nil {
			return j, nil
		}
		_ = j.Stop(context.Background())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// HasUI reports whether Jaeger serves its web UI at QueryURL. A Jaeger
// built from Go modules alone (as JaegerBinary builds it) has none: the
// UI's assets come from a separate npm build, which Jaeger's release
// binaries embed, and it serves a placeholder page instead. The query API
// works either way.
func (j *Jaeger) HasUI(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+"/", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("jaeger UI: GET %s/: %s", j.QueryURL, resp.Status)
	}
	return !strings.Contains(string(body), jaegerPlaceholder), nil
}

// jaegerPlaceholder is in the page a Jaeger without UI assets serves.
const jaegerPlaceholder = "not compiled with the UI assets"

// Stop stops Jaeger.
func (j *Jaeger) Stop(ctx context.Context) error { return j.proc.stop(ctx) }

// LogTail returns the last n lines of Jaeger's log.
func (j *Jaeger) LogTail(n int) string { return j.proc.logTail(n) }

// JaegerSpan is a span as Jaeger's HTTP query API returns it (the fields
// the tests read).
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// Tag returns the value of a span tag as a string ("" when absent).
func (s JaegerSpan) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// JaegerTrace is one trace of the query API.
type JaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []JaegerSpan `json:"spans"`
}

// Traces returns the traces of service that hold a span named operation
// (GET /api/traces), at most limit.
func (j *Jaeger) Traces(ctx context.Context, service, operation string, limit int) ([]JaegerTrace, error) {
	q := url.Values{"service": {service}, "operation": {operation}, "limit": {fmt.Sprint(limit)}, "lookback": {"1h"}}
	return j.get(ctx, "/api/traces?"+q.Encode())
}

// Trace returns one trace by its hex id (GET /api/traces/{id}); an unknown
// id is an error.
func (j *Jaeger) Trace(ctx context.Context, traceID string) (JaegerTrace, error) {
	got, err := j.get(ctx, "/api/traces/"+url.PathEscape(traceID))
	if err != nil {
		return JaegerTrace{}, err
	}
	if len(got) != 1 {
		return JaegerTrace{}, fmt.Errorf("jaeger: %d traces for id %s", len(got), traceID)
	}
	return got[0], nil
}

func (j *Jaeger) get(ctx context.Context, path string) ([]JaegerTrace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data   []JaegerTrace `json:"data"`
		Errors []struct {
			Msg string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("jaeger %s: %s: %w", path, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || len(body.Errors) > 0 {
		return nil, fmt.Errorf("jaeger %s: %s %v", path, resp.Status, body.Errors)
	}
	return body.Data, nil
}
