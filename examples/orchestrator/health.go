package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

// healthPath is where the health report is served.
const healthPath = "/healthz"

// healthTimeout bounds the work behind one health report, so that the
// endpoint answers within a second even when the database does not answer
// at all. Only the queue sample can wait; processors and pools are read
// from memory.
const healthTimeout = 800 * time.Millisecond

// healthReport is the JSON served on /healthz: the metrics snapshot (active
// processors, pools, queues, queue sampler), the database's state and this
// process's task counters.
type healthReport struct {
	otelmetrics.Snapshot
	Database databaseHealth `json:"database"`
	Tasks    taskCounts     `json:"tasks"`
	// Goroutines is runtime.NumGoroutine(): a leak shows as a climb
	// (scripts/soak.sh records its slope).
	Goroutines int `json:"goroutines"`
}

// databaseHealth says whether the database answered the last queue sample
// and whether PGMQ is in it.
type databaseHealth struct {
	Healthy bool `json:"healthy"`
	// Reachable is true when the database answered, even with an error.
	Reachable bool `json:"reachable"`
	// PGMQ is "installed", "missing" (the database answered but has no
	// PGMQ) or "unknown" (the database did not answer).
	PGMQ  string `json:"pgmq"`
	Error string `json:"error"` // empty when healthy
}

// PGMQ states in databaseHealth.
const (
	pgmqInstalled = "installed"
	pgmqMissing   = "missing"
	pgmqUnknown   = "unknown"
)

// The sampler reports its last error as text. A server's answer carries
// "(SQLSTATE xxxxx)"; PGMQ's absence is schema "pgmq" missing (3F000) or
// its table pgmq.meta missing (42P01). Connection failures (class 08,
// 57P0x shutdowns) mean the database itself is down.
var (
	sqlState    = regexp.MustCompile(`\(SQLSTATE ([0-9A-Z]{5})\)`)
	pgmqAbsent  = regexp.MustCompile(`schema "pgmq" does not exist|relation "pgmq\.meta" does not exist`)
	installHint = "database up, PGMQ missing: " + pgmqclient.InstallHint
)

// classify fills Reachable and PGMQ from the sampler's error text.
func (d *databaseHealth) classify(errText string) {
	d.PGMQ = pgmqUnknown
	m := sqlState.FindStringSubmatch(errText)
	if m == nil || strings.HasPrefix(m[1], "08") || strings.HasPrefix(m[1], "57P") {
		return // no answer from the server, or it is shutting down
	}
	d.Reachable = true
	if pgmqAbsent.MatchString(errText) {
		d.PGMQ = pgmqMissing
		d.Error = installHint + " (" + errText + ")"
		return
	}
	d.PGMQ = pgmqInstalled
}

// taskCounts are the messages this process handled since it started.
type taskCounts struct {
	Produced  int64 `json:"produced"`
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
}

// health assembles the report within healthTimeout. It never waits for a
// pool connection, which the processors may all hold: the snapshot reads
// pool statistics from memory and samples the queues on the queue
// sampler's own connection. That sample also tells whether the database is
// reachable.
func (o *orchestrator) health(ctx context.Context) healthReport {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	r := healthReport{
		Snapshot: o.metrics.Snapshot(ctx),
		Tasks: taskCounts{
			Produced:  o.produced.Load(),
			Processed: o.processed.Load(),
			Failed:    o.failed.Load(),
		},
		Goroutines: runtime.NumGoroutine(),
	}
	var s *otelmetrics.DatabaseSnapshot
	if len(r.Databases) > 0 {
		s = &r.Databases[0]
	}
	switch {
	case s == nil:
		r.Database.Error = "queue sampling is off"
		r.Database.PGMQ = pgmqUnknown
	case !s.Healthy:
		r.Database.Error = s.Error
		r.Database.classify(s.Error)
	default:
		r.Database.Healthy, r.Database.Reachable, r.Database.PGMQ = true, true, pgmqInstalled
	}
	return r
}

// healthMux serves the report on healthPath: 200 when the database is
// healthy, 503 (with the same JSON body) when it is not, so a load balancer
// or an orchestration platform can act on the status alone. The body tells
// a database that is down (reachable false) from one that is up without
// PGMQ (reachable true, pgmq "missing", the error saying how to install it).
func (o *orchestrator) healthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+healthPath, func(w http.ResponseWriter, r *http.Request) {
		rep := o.health(r.Context())
		body, err := json.Marshal(rep)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if rep.Database.Healthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(append(body, '\n'))
	})
	return mux
}
