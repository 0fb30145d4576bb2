package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// collectorCounter sums the values of the Collector's own metric name
// whose labels include receiver="pgmq", read from its telemetry endpoint.
func collectorCounter(ctx context.Context, c *stack.Collector, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.TelemetryAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `receiver="pgmq"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// procStatus reads a field of /proc/<pid>/status, in MiB.
func procStatus(b *testing.B, pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkCollectorReceiver runs the Collector with the pgmq receiver
// (collector/pgmq-receiver.yaml, its default 2 s sample timeout, a 5 s
// interval) on two databases, each in a PostgreSQL 15 cluster of its own
// with default settings, holding 5,000 queues of 0 to 5 messages; each
// iteration waits for one more scrape. The Collector's own metrics tell
// whether every queue was reported at every scrape: each scrape adds the
// points it carried to otelcol_receiver_accepted_metric_points at once, and
// a complete one carries four per queue (two depths, the age, the sent
// messages), 40,000, plus one pgmq.sampler.errors point per database and
// error type counted so far; complete is 1 when every scrape after the
// first carried at least the 40,000 (min_points/scrape is the fewest). rss_mib and hwm_mib are the
// Collector's resident memory at the end and at its peak.
func BenchmarkCollectorReceiver(b *testing.B) {
	const (
		perDB    = 5000
		interval = 5 * time.Second
		points   = 4 * 2 * perDB // per complete scrape
	)
	var urls []string
	for range 2 {
		cluster := pgcluster.Start(b, pgcluster.Options{})
		db := pgmqtest.NewAt(b, cluster.URL(""))
		db.CreateQueues(b, "cq_", perDB, func(i int) int { return i % 6 })
		urls = append(urls, db.URL)
	}
	overlay := filepath.Join(b.TempDir(), "two-databases.yaml")
	if err := os.WriteFile(overlay, []byte("receivers:\n  pgmq:\n    databases:\n      - dsn: ${env:PGMQ_DATABASE_URL}\n      - dsn: ${env:PGMQ_DATABASE_URL_2}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := stack.StartCollector(ctx, stack.CollectorOptions{Dir: b.TempDir(), Configs: []string{"collector/pgmq-receiver.yaml", overlay},
		Env: []string{"PGMQ_DATABASE_URL=" + urls[0], "PGMQ_DATABASE_URL_2=" + urls[1], "PGMQ_COLLECTION_INTERVAL=" + interval.String()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Stop(context.Background()) })

	// Each scrape adds its points to the receiver's accepted points at
	// once: every change of the counter is one scrape, its size the points
	// that scrape carried.
	accepted := func() float64 {
		n, err := collectorCounter(ctx, c, "otelcol_receiver_accepted_metric_points")
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	last := accepted()
	var sizes []float64
	nextScrape := func() {
		deadline := time.Now().Add(3 * interval)
		for {
			if n := accepted(); n != last {
				sizes = append(sizes, n-last)
				last = n
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("no scrape within %v; collector log:\n%s", 3*interval, c.LogTail(20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if last == 0 {
		nextScrape() // the first scrape, connections included, is not counted
	}
	sizes = nil
	for b.Loop() {
		nextScrape()
	}
	complete := len(sizes) > 0
	for _, size := range sizes {
		complete = complete && size >= points
	}
	if !complete {
		b.Logf("points per scrape %v, want at least %d; collector log:\n%s", sizes, points, c.LogTail(10))
	}
	b.ReportMetric(float64(len(sizes)), "scrapes")
	b.ReportMetric(slices.Min(sizes), "min_points/scrape")
	b.ReportMetric(map[bool]float64{true: 1, false: 0}[complete], "complete")
	b.ReportMetric(procStatus(b, c.PID(), "VmRSS"), "rss_mib")
	b.ReportMetric(procStatus(b, c.PID(), "VmHWM"), "hwm_mib")
}
