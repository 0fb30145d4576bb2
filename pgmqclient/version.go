package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrUnsupported is matched (errors.Is) by every *UnsupportedError: the
// installed PGMQ lacks the SQL function an operation needs. The client finds
// out from the catalog before it calls the function, so no failing SQL is
// sent and an enclosing transaction is not aborted.
var ErrUnsupported = errors.New("pgmqclient: not supported by the installed PGMQ")

// Feature is a part of PGMQ's SQL API that not every release has. The client
// checks for a feature by looking for its SQL functions, with their argument
// types, in the catalog (see Capabilities).
type Feature int

// The features the client checks for. Since gives the PGMQ release that
// added each one, read from PGMQ's upgrade scripts.
const (
	// FeatureSendAt: send and send_batch with a timestamptz delay (WithDelayUntil).
	FeatureSendAt Feature = iota
	// FeatureReadConditional: read and read_with_poll with a jsonb condition (WithCondition).
	FeatureReadConditional
	// FeatureSetVTBatch: set_vt over an array of ids with a delay in seconds.
	FeatureSetVTBatch
	// FeatureSetVTAt: set_vt of one message to a timestamptz.
	FeatureSetVTAt
	// FeatureSetVTBatchAt: set_vt over an array of ids to a timestamptz.
	FeatureSetVTBatchAt
	// FeatureNotifyInsert: enable_notify_insert and disable_notify_insert.
	FeatureNotifyInsert
	// FeatureNotifyThrottle: enable_notify_insert with a throttle interval.
	FeatureNotifyThrottle
	// FeatureFIFOIndex: create_fifo_index and create_fifo_indexes_all.
	FeatureFIFOIndex
	// FeatureReadGrouped: read_grouped and read_grouped_with_poll.
	FeatureReadGrouped
	// FeatureReadGroupedRR: read_grouped_rr and read_grouped_rr_with_poll.
	FeatureReadGroupedRR
	// FeatureTopics: bind_topic, unbind_topic, send_topic, send_batch_topic, test_routing.
	FeatureTopics
	// FeaturePartitioned: create_partitioned (it also needs pg_partman).
	FeaturePartitioned
	// FeatureConvertArchivePartitioned: convert_archive_partitioned (needs pg_partman).
	FeatureConvertArchivePartitioned
	numFeatures
)

// pgFunc is one SQL function of schema pgmq: its name and argument types
// as format_type spells them.
type pgFunc struct {
	name string
	args string
}

func (f pgFunc) String() string { return "pgmq." + f.name + "(" + f.args + ")" }

const (
	tsArg      = "timestamp with time zone"
	jsonbArr   = "jsonb[]"
	bigintArr  = "bigint[]"
	textArg    = "text"
	integerArg = "integer"
)

func sig(name string, args ...string) pgFunc { return pgFunc{name, strings.Join(args, ",")} }

// featureInfo is a feature's name, the release that added it ("" if it
// predates every release the client supports, 1.5), the functions that must
// exist with exactly these arguments, and those that must exist under a name
// whatever their arguments (which changed over releases).
type featureInfo struct {
	name, since string
	funcs       []pgFunc
	names       []string
}

var features = [numFeatures]featureInfo{
	FeatureSendAt: {name: "send with a timestamp delay", since: "", funcs: []pgFunc{
		sig("send", textArg, "jsonb", tsArg), sig("send", textArg, "jsonb", "jsonb", tsArg),
		sig("send_batch", textArg, jsonbArr, tsArg), sig("send_batch", textArg, jsonbArr, jsonbArr, tsArg)}},
	FeatureReadConditional: {name: "read with a condition", since: "", funcs: []pgFunc{
		sig("read", textArg, integerArg, integerArg, "jsonb"),
		sig("read_with_poll", textArg, integerArg, integerArg, integerArg, integerArg, "jsonb")}},
	FeatureSetVTBatch: {name: "set_vt over several ids", since: "1.10.0", funcs: []pgFunc{
		sig("set_vt", textArg, bigintArr, integerArg)}},
	FeatureSetVTAt: {name: "set_vt to a timestamp", since: "1.10.0", funcs: []pgFunc{
		sig("set_vt", textArg, "bigint", tsArg)}},
	FeatureSetVTBatchAt: {name: "set_vt over several ids to a timestamp", since: "1.10.0", funcs: []pgFunc{
		sig("set_vt", textArg, bigintArr, tsArg)}},
	FeatureNotifyInsert: {name: "insert notifications", since: "1.7.0",
		funcs: []pgFunc{sig("disable_notify_insert", textArg)}, names: []string{"enable_notify_insert"}},
	FeatureNotifyThrottle: {name: "throttled insert notifications", since: "1.8.0", funcs: []pgFunc{
		sig("enable_notify_insert", textArg, integerArg), sig("disable_notify_insert", textArg)}},
	FeatureFIFOIndex: {name: "FIFO indexes", since: "1.7.1", funcs: []pgFunc{
		sig("create_fifo_index", textArg), sig("create_fifo_indexes_all")}},
	FeatureReadGrouped: {name: "grouped (FIFO) reads", since: "1.9.0", funcs: []pgFunc{
		sig("read_grouped", textArg, integerArg, integerArg),
		sig("read_grouped_with_poll", textArg, integerArg, integerArg, integerArg, integerArg)}},
	FeatureReadGroupedRR: {name: "round-robin grouped (FIFO) reads", since: "1.9.0", funcs: []pgFunc{
		sig("read_grouped_rr", textArg, integerArg, integerArg),
		sig("read_grouped_rr_with_poll", textArg, integerArg, integerArg, integerArg, integerArg)}},
	FeatureTopics: {name: "topics", since: "1.11.0", funcs: []pgFunc{
		sig("bind_topic", textArg, textArg), sig("unbind_topic", textArg, textArg),
		sig("send_topic", textArg, "jsonb", "jsonb", integerArg),
		sig("send_batch_topic", textArg, jsonbArr, jsonbArr, integerArg),
		sig("test_routing", textArg)}},
	FeaturePartitioned: {name: "partitioned queues", names: []string{"create_partitioned"}},
	FeatureConvertArchivePartitioned: {name: "partitioned archives", since: "", funcs: []pgFunc{
		sig("convert_archive_partitioned", textArg, textArg, textArg, integerArg)}},
}

// String names the feature.
func (f Feature) String() string {
	if f < 0 || f >= numFeatures {
		return fmt.Sprintf("Feature(%d)", int(f))
	}
	return features[f].name
}

// Since is the PGMQ release that added the feature, or "" if every release
// the client supports (1.5 on) has it.
func (f Feature) Since() string {
	if f < 0 || f >= numFeatures {
		return ""
	}
	return features[f].since
}

// UnsupportedError reports an operation the installed PGMQ cannot do. It is
// the cause inside the *OpError the operation returns.
type UnsupportedError struct {
	// Feature is what is missing; Feature.Since the release that added it.
	Feature Feature
	// Installed describes the installed PGMQ: "extension 1.5.1", or
	// "SQL install" when PGMQ was installed from its script.
	Installed string
}

// Error names the feature and the release that added it.
func (e *UnsupportedError) Error() string {
	if s := e.Feature.Since(); s != "" {
		return fmt.Sprintf("pgmqclient: %s: needs PGMQ %s or newer (installed: %s)", e.Feature, s, e.Installed)
	}
	return fmt.Sprintf("pgmqclient: %s: missing from the installed PGMQ (%s)", e.Feature, e.Installed)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Capabilities is what the installed PGMQ offers, as the catalog showed it
// when the client last looked (see Client.Capabilities).
type Capabilities struct {
	// ExtensionVersion is pg_extension.extversion of pgmq, or "" when PGMQ
	// was installed from its SQL script (or the compatible test schema).
	ExtensionVersion string
	funcs            map[pgFunc]struct{}
	names            map[string]struct{}

	// The forms the client picks per call, looked up once (see derive).
	sendHeaders bool // send(name, msg, headers, delay): 1.5 on
	popQty      bool // pop(name, qty)
}

// derive sets the fields looked up once from funcs.
func (c *Capabilities) derive() {
	_, c.sendHeaders = c.funcs[sendWithHeaders]
	_, c.popQty = c.funcs[popWithQty]
}

// Has reports whether every SQL function of the feature exists.
func (c *Capabilities) Has(f Feature) bool {
	if f < 0 || f >= numFeatures {
		return false
	}
	for _, name := range features[f].names {
		if _, ok := c.names[name]; !ok {
			return false
		}
	}
	for _, fn := range features[f].funcs {
		if _, ok := c.funcs[fn]; !ok {
			return false
		}
	}
	return true
}

// HasFunction reports whether pgmq.<name> exists with exactly these argument
// types, spelled as PostgreSQL's format_type does ("text", "integer",
// "bigint[]", "timestamp with time zone", ...).
func (c *Capabilities) HasFunction(name string, argTypes ...string) bool {
	_, ok := c.funcs[sig(name, argTypes...)]
	return ok
}

// Functions lists the pgmq functions seen, as "pgmq.name(types)", sorted.
func (c *Capabilities) Functions() []string {
	out := make([]string, 0, len(c.funcs))
	for f := range c.funcs {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

// installed describes the install for error messages.
func (c *Capabilities) installed() string {
	if c.ExtensionVersion != "" {
		return "extension " + c.ExtensionVersion
	}
	return "SQL install"
}

// capabilitiesSQL reads the extension's version and every function of
// schema pgmq with its argument types, in one round trip. The version is
// NULL for a SQL install.
const capabilitiesSQL = `SELECT
	(SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pgmq') AS extversion,
	p.proname::text AS name,
	coalesce((SELECT string_agg(pg_catalog.format_type(a.t, NULL), ',' ORDER BY a.i)
	          FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i)), '') AS args
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = 'pgmq'`

// capsCache holds a Client's capabilities once loaded. Concurrent first
// calls share one load; a caller whose context ends stops waiting for it.
type capsCache struct {
	caps    atomic.Pointer[Capabilities]
	mu      sync.Mutex
	loading chan struct{} // closed when the load in progress ends; nil if none
}

// Capabilities returns what the installed PGMQ offers. The first call asks
// the catalog (one cheap query on pg_proc and pg_extension); the answer is
// kept by the Client, so later calls, and the checks every newer operation
// makes, cost nothing. Call RefreshCapabilities after upgrading PGMQ.
// Safe for concurrent use.
func (c *Client) Capabilities(ctx context.Context) (*Capabilities, error) {
	for {
		if caps := c.caps.caps.Load(); caps != nil {
			return caps, nil
		}
		c.caps.mu.Lock()
		if caps := c.caps.caps.Load(); caps != nil {
			c.caps.mu.Unlock()
			return caps, nil
		}
		if wait := c.caps.loading; wait != nil {
			c.caps.mu.Unlock()
			select {
			case <-wait: // loaded, or failed: look again
				continue
			case <-ctx.Done():
				return nil, opErr(c.db, "capabilities", "", ctx.Err())
			}
		}
		done := make(chan struct{})
		c.caps.loading = done
		c.caps.mu.Unlock()

		caps, err := c.loadCapabilities(ctx)
		c.caps.mu.Lock()
		if err == nil {
			c.caps.caps.Store(caps)
		}
		c.caps.loading = nil
		c.caps.mu.Unlock()
		close(done)
		return caps, err
	}
}

// RefreshCapabilities asks the catalog again, for a PGMQ upgraded (or
// installed) while the Client was in use, and keeps and returns the new
// answer.
func (c *Client) RefreshCapabilities(ctx context.Context) (*Capabilities, error) {
	caps, err := c.loadCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	c.caps.caps.Store(caps)
	return caps, nil
}

// loadCapabilities reads the capabilities from the catalog.
func (c *Client) loadCapabilities(ctx context.Context) (*Capabilities, error) {
	const op = "capabilities"
	rows, err := c.db.Query(ctx, capabilitiesSQL)
	if err != nil {
		return nil, opErr(c.db, op, "", err)
	}
	caps := &Capabilities{funcs: map[pgFunc]struct{}{}, names: map[string]struct{}{}}
	type row struct {
		ext        *string
		name, args string
	}
	err = scanByName(rows, func(column string, r *row) any {
		switch column {
		case "extversion":
			return &r.ext
		case "name":
			return &r.name
		case "args":
			return &r.args
		}
		return nil
	}, func(r row) {
		if r.ext != nil {
			caps.ExtensionVersion = *r.ext
		}
		caps.funcs[pgFunc{r.name, r.args}] = struct{}{}
		caps.names[r.name] = struct{}{}
	}, "name", "args")
	if err != nil {
		return nil, opErr(c.db, op, "", err)
	}
	caps.derive()
	return caps, nil
}

// require returns nil when the installed PGMQ has f, and otherwise an
// *OpError for op and queue wrapping an *UnsupportedError (or the error
// that kept the client from finding out).
func (c *Client) require(ctx context.Context, op, queue string, f Feature) error {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		var oe *OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return opErr(c.db, op, queue, fmt.Errorf("reading PGMQ's capabilities: %w", err))
	}
	if !caps.Has(f) {
		return &OpError{Op: op, Queue: queue, Err: &UnsupportedError{Feature: f, Installed: caps.installed()}}
	}
	return nil
}
