package queuesampler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// Operations of the sampler, the first half of a failure's identity.
const (
	OpConnect = "connect"
	OpElect   = "elect"
	OpSample  = "sample"
)

// ErrorType classifies a sampling error into a value of error.type with a
// small, fixed set of values: "timeout", a SQLSTATE, "connection" or
// "_OTHER". Never the message: servers and poolers word the same failure
// differently from one attempt to the next (PgBouncer lists refused
// startup parameters in random order).
func ErrorType(err error) string {
	var pgErr *pgconn.PgError
	var netErr net.Error
	var connErr *pgconn.ConnectError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "57014", "55P03": // query_canceled (statement_timeout), lock_not_available
			return "timeout"
		}
		return pgErr.Code
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.SafeToRetry(err),
		// The server or the network dropped an open connection mid-query.
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection"
	}
	return "_OTHER"
}

// QueueErrorType is the error.type of a queue that could not be sampled,
// or "" for a named queue that does not exist, which is reported but not
// counted (it is configuration, not a sampling failure).
func QueueErrorType(err error) string {
	var unknown *queuedepth.UnknownError
	switch {
	case errors.Is(err, pgmqclient.ErrQueueNotFound):
		return ""
	case errors.As(err, &unknown):
		return unknown.Reason
	case errors.Is(err, queuedepth.ErrUnloggedOnStandby):
		return "unlogged_on_standby"
	}
	return ErrorType(err)
}

// failures counts failed samples and failed queues by error.type, and
// hands each distinct failure to onError once until it stops.
type failures struct {
	onError func(error)

	mu       sync.Mutex
	counts   map[string]int64
	reported string            // op/type of the sample failure last reported; "" after a success
	queues   map[string]string // queue -> message of its error last reported
}

// add counts err, failed in op, and reports it unless the same operation
// last failed with the same type.
func (f *failures) add(op string, err error) {
	typ := ErrorType(err)
	f.count(typ)
	f.reportOnce(op+"/"+typ, err)
}

// count adds one failure of error.type typ.
func (f *failures) count(typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]int64{}
	}
	f.counts[typ]++
}

// reportOnce hands err to onError unless key was the last thing reported,
// without counting it (a replica on a standby is not failing).
func (f *failures) reportOnce(key string, err error) {
	f.mu.Lock()
	report := key != f.reported
	f.reported = key
	f.mu.Unlock()
	if report {
		f.onError(err)
	}
}

// ok forgets the last report, so the next failure is reported again.
func (f *failures) ok() {
	f.mu.Lock()
	f.reported = ""
	f.mu.Unlock()
}

// queueFailures counts the per-queue failures of a successful sample and
// reports each new one. A queue that samples again without error is
// forgotten, so a later failure is reported again.
func (f *failures) queueFailures(qs []queuedepth.Queue) {
	f.mu.Lock()
	if f.queues == nil {
		f.queues = map[string]string{}
	}
	seen := make(map[string]bool, len(qs))
	var report []error
	for _, q := range qs {
		seen[q.Name] = true
		if q.Err == nil {
			delete(f.queues, q.Name)
			continue
		}
		if typ := QueueErrorType(q.Err); typ != "" {
			if f.counts == nil {
				f.counts = map[string]int64{}
			}
			f.counts[typ]++
		}
		if msg := q.Err.Error(); f.queues[q.Name] != msg {
			f.queues[q.Name] = msg
			report = append(report, fmt.Errorf("queuesampler: %w", q.Err))
		}
	}
	for q := range f.queues {
		if !seen[q] {
			delete(f.queues, q)
		}
	}
	f.mu.Unlock()
	for _, err := range report {
		f.onError(err)
	}
}

// Failure is a count of failures of one error.type.
type Failure struct {
	Type  string
	Count int64
}

// snapshot returns the counts, by error.type.
func (f *failures) snapshot() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Failure, 0, len(f.counts))
	for t, n := range f.counts {
		out = append(out, Failure{Type: t, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}
