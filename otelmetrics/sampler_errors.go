package otelmetrics

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Operations of the queue sampler, the first half of an error's identity.
const (
	opConnect = "connect"
	opElect   = "elect"
	opSample  = "sample"
)

// errorType classifies a sampling error into a value of error.type with a
// small, fixed set of values: "timeout", a SQLSTATE, "connection" or
// "_OTHER". Never the message: servers and poolers word the same failure
// differently from one attempt to the next (PgBouncer lists refused
// startup parameters in random order).
func errorType(err error) string {
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

// failureCounts counts failed samples by error.type and hands each
// distinct failure, identified by operation and error type, to otel.Handle
// once until a sample succeeds.
type failureCounts struct {
	mu       sync.Mutex
	counts   map[string]*failureCount
	reported string // op/type last handed to otel.Handle; "" after a success
}

type failureCount struct {
	n     atomic.Int64
	attrs metric.MeasurementOption
}

// add counts err, failed in op, and reports it unless the same operation
// last failed with the same type.
func (f *failureCounts) add(op string, err error) {
	typ := errorType(err)
	f.count(typ)
	f.reportOnce(op+"/"+typ, err)
}

// count adds one failure of error.type typ without reporting it (callers
// that report per queue do so themselves).
func (f *failureCounts) count(typ string) {
	f.mu.Lock()
	if f.counts == nil {
		f.counts = map[string]*failureCount{}
	}
	c := f.counts[typ]
	if c == nil {
		c = &failureCount{attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String(AttrErrorType, typ)))}
		f.counts[typ] = c
	}
	f.mu.Unlock()
	c.n.Add(1)
}

// reportOnce hands err to otel.Handle unless key was the last thing
// reported, without counting it as a failure (a replica on a standby is
// not failing).
func (f *failureCounts) reportOnce(key string, err error) {
	f.mu.Lock()
	report := key != f.reported
	f.reported = key
	f.mu.Unlock()
	if report {
		otel.Handle(err)
	}
}

// ok forgets the last report, so the next failure is reported again.
func (f *failureCounts) ok() {
	f.mu.Lock()
	f.reported = ""
	f.mu.Unlock()
}

// observe reports every count.
func (f *failureCounts) observe(o metric.Observer, inst metric.Int64Observable) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.counts {
		o.ObserveInt64(inst, c.n.Load(), c.attrs)
	}
}
