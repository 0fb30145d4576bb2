//go:build linux

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// replica is one orchestrator process of the soak, started again after
// each SIGKILL under the same service.instance.id.
type replica struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{}
	healthURL   string
	incarnation int
	frozen      bool
}

// usage is one reading of a replica's resident memory and goroutines.
type usage struct {
	at          time.Time
	incarnation int
	rssKiB      float64
	goroutines  float64
}

var healthLine = regexp.MustCompile(`health=(http://\S+)`)

// start runs a new incarnation and waits until its /healthz answers.
func (r *replica) start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	log, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	offset, _ := log.Seek(0, 2)
	cmd := exec.Command(r.bin, r.args...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(done) }()
	r.cmd, r.done, r.frozen, r.healthURL = cmd, done, false, ""
	r.incarnation++
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-done:
			return fmt.Errorf("%s exited at start", r.name)
		default:
		}
		if u := lastHealthURL(r.logPath, offset); u != "" {
			r.healthURL = u
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: no health address logged within 30s", r.name)
}

// lastHealthURL reads the health address logged after offset.
func lastHealthURL(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return ""
	}
	url := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := healthLine.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	return url
}

// signal sends sig to the running incarnation.
func (r *replica) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("not running")
	}
	switch sig {
	case syscall.SIGSTOP:
		r.frozen = true
	case syscall.SIGCONT:
		r.frozen = false
	}
	return r.cmd.Process.Signal(sig)
}

// kill ends the incarnation with SIGKILL and waits for it.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// stop thaws the incarnation and ends it with SIGTERM (it releases the
// lease), killing it after timeout.
func (r *replica) stop(timeout time.Duration) error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with %d after SIGTERM", r.name, code)
		}
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s still running %v after SIGTERM", r.name, timeout)
	}
}

// soakHealth is the part of /healthz the soak reads.
type soakHealth struct {
	Goroutines int `json:"goroutines"`
	Databases  []struct {
		Role string `json:"role"`
	} `json:"databases"`
}

// health reads /healthz of a running, unfrozen incarnation (whatever its
// status code: 503 still carries the report).
func (r *replica) health(ctx context.Context) (soakHealth, error) {
	r.mu.Lock()
	url, frozen := r.healthURL, r.frozen
	r.mu.Unlock()
	var h soakHealth
	if url == "" || frozen {
		return h, errors.New("not serving")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return h, err
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// role is the replica's queue sampler role, "" when unknown.
func (r *replica) role(ctx context.Context) string {
	h, err := r.health(ctx)
	if err != nil || len(h.Databases) == 0 {
		return ""
	}
	return h.Databases[0].Role
}

// measure reads resident memory from /proc and goroutines from /healthz.
func (r *replica) measure(ctx context.Context) (usage, bool) {
	r.mu.Lock()
	cmd, inc := r.cmd, r.incarnation
	r.mu.Unlock()
	if cmd == nil {
		return usage{}, false
	}
	h, err := r.health(ctx)
	if err != nil {
		return usage{}, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return usage{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return usage{}, false
			}
			return usage{at: time.Now(), incarnation: inc, rssKiB: kib, goroutines: float64(h.Goroutines)}, true
		}
	}
	return usage{}, false
}

// logTail returns the last n bytes of the replica's log.
func (r *replica) logTail(n int64) string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
