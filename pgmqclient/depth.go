package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultExactCountThreshold is the depth up to which queues are counted
// exactly. Above it the depth is estimated, so the cost of a sample does
// not grow with the backlog.
const DefaultExactCountThreshold = 50_000

// MaxExactCountThreshold is the largest ExactCountThreshold accepted, 2^40
// (a trillion messages): the sampler computes twice the threshold, which
// must not overflow, and PostgreSQL's LIMIT takes a bigint. A queue that
// deep is never counted row by row in a sample's time anyway.
const MaxExactCountThreshold = 1 << 40

// DefaultDepthLockTimeout is how long a sample waits for a lock on one
// queue's table (held, for example, by ALTER TABLE, VACUUM FULL or LOCK
// TABLE) before it gives that queue up and goes on with the others.
const DefaultDepthLockTimeout = 100 * time.Millisecond

// catalogChunk is how many queues one catalog statement reads: it takes a
// lock per table, partition and sequence, held until its transaction ends,
// so the chunk bounds the locks the sampler holds at once.
var catalogChunk = 200

// sampleProbes is how many ids an id sample looks up to estimate the
// depth: with 90 % of the ids present, two standard errors are 0.5 % of
// the depth. splitProbes is how many it looks up when it must also split
// the depth into visible and invisible (both above the threshold): two
// standard errors of a state's share are then at most 0.4 % of the depth.
const (
	sampleProbes = 16384
	splitProbes  = 65536
)

// scanPages is the largest table, in pages, that a probe reads with one
// scan rather than through its indexes; maxRowsPerPage bounds the rows of
// a page (PostgreSQL's MaxHeapTuplesPerPage for 8 kB pages), so that a
// scanned table is known to hold no more than the threshold.
const (
	scanPages      = 8
	maxRowsPerPage = 291
)

// DepthOptions selects the queues a depth sample reports and how it counts.
type DepthOptions struct {
	// Queues limits the sample to these queues. Empty means every queue in
	// pgmq.meta, discovered at each sample. A named queue that does not
	// exist is reported in the result with an Err matching
	// ErrQueueNotFound.
	Queues []string
	// Include, when not empty, keeps only the queues whose name matches
	// one of these patterns; Exclude then drops those matching any of its
	// patterns. Patterns are path.Match globs ("orders_*", "tmp_?"),
	// in which '*' and '?' also match '/', matched against the lower-cased
	// name, and are checked when the
	// sampler is created.
	Include, Exclude []string
	// ExactCountThreshold is the largest depth counted exactly; zero means
	// DefaultExactCountThreshold.
	ExactCountThreshold int64
	// LockTimeout bounds the wait for one queue table's lock; zero means
	// DefaultDepthLockTimeout. A queue whose table stays locked longer is
	// reported with an Err; the others are sampled.
	LockTimeout time.Duration
	// StatementTimeout, when positive, bounds each of the sampler's
	// statements on the server, so that a slow statement ends there
	// before the caller's context does (which would make pgx close the
	// connection).
	StatementTimeout time.Duration
}

// QueueDepth is one queue's depth as a sample saw it.
type QueueDepth struct {
	// Queue is the name as PGMQ stores it in pgmq.meta (as given in
	// DepthOptions.Queues for a queue that does not exist).
	Queue string
	// Err, when not nil, says why this queue's figures are missing: the
	// queue does not exist (ErrQueueNotFound), its table could not be read
	// (a *pgconn.PgError, for example lock_not_available), or its depth
	// could not be known within the sampler's bounds (ErrDepthUnknown; the
	// age and the sent count are still filled in). The depth fields are
	// then zero and must not be reported.
	Err error
	// Depth is the number of messages in the queue.
	Depth int64
	// Visible messages can be read now; Invisible ones are in flight
	// (read, visibility timeout running) or delayed. Visible+Invisible == Depth.
	Visible, Invisible int64
	// VisibleMethod and InvisibleMethod say how each figure was obtained:
	// MethodCount when exact, MethodEstimate otherwise. Method is Depth's:
	// MethodCount only when both are.
	VisibleMethod, InvisibleMethod, Method DepthMethod
	// Source says what an estimate rests on: SourceCount (no estimate),
	// SourceLiveTuples, SourcePlanner or SourceIDSample.
	Source string
	// OldestAge is the age of the message with the smallest id; 0 when empty.
	OldestAge time.Duration
	// TotalSent is the number of messages ever sent (the id sequence's
	// last value), when TotalSentKnown. It is left out on a standby, where
	// the sequence reads up to 32 ahead, and for unlogged queues, whose
	// sequence starts again with the table after a crash or a promotion;
	// after a crash restart it may be up to 32 above the messages actually
	// sent (values PostgreSQL logged ahead), never below, and it never goes
	// backwards.
	TotalSent      int64
	TotalSentKnown bool
	// Estimated reports that Depth is an estimate (Method is
	// MethodEstimate), because the queue holds more than the exact-count
	// threshold.
	Estimated bool
	// SampledAt is the server's clock when the sample began.
	SampledAt time.Time
}

// SampleDepths reports the depth of the selected queues with a cost bounded
// by the exact-count threshold rather than by the backlog. To sample
// repeatedly, keep a DepthSampler.
func (c *Client) SampleDepths(ctx context.Context, opts DepthOptions) ([]QueueDepth, error) {
	s, err := NewDepthSampler(c.db, opts)
	if err != nil {
		return nil, err
	}
	return s.Sample(ctx)
}

// DepthSampler samples queue depths repeatedly.
//
// A sample costs a bounded amount per queue, however many queues there are
// and however deep they are:
//
//  1. discovery: one catalog statement, one row per queue, no lock on any
//     queue table;
//  2. catalog: one statement per 200 queues reading the statistics, the
//     planner's inputs, each table's size and the id sequence, in its own
//     transaction (so at most a few hundred locks are held at once);
//  3. probes: one statement per queue whose table holds a page (an empty
//     table is known empty from its size), each in its own transaction:
//     the smallest and largest id and two counts through the vt index, each
//     capped at threshold+1 rows;
//  4. for the rare queue where both states pass the threshold, or no
//     estimate can be trusted, a stratified sample of 16,384 ids looked up
//     by primary key.
//
// The statements are pipelined, one round trip per chunk, and sent as
// unnamed statements: the server keeps no plan per queue, so its memory
// does not grow as queues come and go. Each of its transactions sets its
// own lock_timeout (the option's LockTimeout) and statement_timeout, local
// to it, so a locked table costs its queue, not the sample, and nothing is
// set on the session (inside a caller's transaction, the caller's
// settings rule and a failure ends the caller's transaction). On a *pgx.Conn the statements whose text never changes, and one
// statement probing the queues above the threshold together (at most 64),
// are kept prepared, so that sampling deep queues plans nothing; that
// statement is deallocated when the set of deep queues changes. See
// estimateDepth for how values are derived.
//
// A DepthSampler is safe for concurrent use; samples run one at a time.
// Use a dedicated connection (*pgx.Conn) or a pool (*pgxpool.Pool, one
// connection is acquired per sample); other DBs work one statement at a
// time.
type DepthSampler struct {
	db          DB
	names       []string // lower-cased filter; empty means all queues
	include     []string
	exclude     []string
	threshold   int64
	lockTimeout time.Duration
	// statementTimeout bounds each statement on the server; 0: none.
	statementTimeout time.Duration

	mu       sync.Mutex
	prepared depthPrepared // only on a *pgx.Conn
	last     []*depthQueue // the queues the last sample found
	// spec are the probe statements of the last sample, when few, sent
	// ahead with the next discovery.
	spec []depthStmt
	// groupVis are the deep queues (by table) whose last group probe
	// needed the visible count: their branch makes it (see depthGroupSQL).
	// At most maxPreparedProbes entries, rebuilt at every group probe.
	groupVis map[string]bool
}

// maxSpeculated bounds the probe statements sent ahead.
const maxSpeculated = 64

// speculated are probe statements sent ahead and their results.
type speculated struct {
	stmts []depthStmt
	rows  []depthRows
	errs  []error
}

// matches reports whether stmts are the statements sent ahead.
func (sp speculated) matches(stmts []depthStmt) bool {
	return sp.stmts != nil && slices.EqualFunc(sp.stmts, stmts, func(a, b depthStmt) bool {
		return a.sql == b.sql && a.name == b.name && slices.Equal(a.args, b.args)
	})
}

// NewDepthSampler validates opts and returns a sampler running on db. No
// SQL is sent until Sample.
func NewDepthSampler(db DB, opts DepthOptions) (*DepthSampler, error) {
	const op = "sample depths"
	threshold := opts.ExactCountThreshold
	if threshold == 0 {
		threshold = DefaultExactCountThreshold
	}
	if threshold < 0 || threshold > MaxExactCountThreshold {
		return nil, invalidArg(op, "", "exact count threshold %d is outside 0..%d", threshold, int64(MaxExactCountThreshold))
	}
	lt := opts.LockTimeout
	if lt == 0 {
		lt = DefaultDepthLockTimeout
	}
	if lt < time.Millisecond {
		return nil, invalidArg(op, "", "lock timeout %v is below 1ms", opts.LockTimeout)
	}
	names := make([]string, 0, len(opts.Queues))
	for _, q := range opts.Queues {
		if err := ValidateQueueName(q); err != nil {
			return nil, &OpError{Op: op, Queue: q, Err: err}
		}
		names = append(names, strings.ToLower(q))
	}
	include, err := queuePatterns(opts.Include)
	if err != nil {
		return nil, &OpError{Op: op, Err: err}
	}
	exclude, err := queuePatterns(opts.Exclude)
	if err != nil {
		return nil, &OpError{Op: op, Err: err}
	}
	if opts.StatementTimeout < 0 {
		return nil, invalidArg(op, "", "negative statement timeout %v", opts.StatementTimeout)
	}
	ds := &DepthSampler{db: db, names: names, include: include, exclude: exclude,
		threshold: threshold, lockTimeout: lt, statementTimeout: opts.StatementTimeout}
	if _, ok := db.(*pgx.Conn); ok {
		ds.prepared = depthPrepared{names: map[string]string{}}
	}
	return ds, nil
}

// queuePatterns checks and lower-cases glob patterns.
func queuePatterns(ps []string) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, fmt.Errorf("%w: queue pattern %q is not a valid glob", ErrInvalidArgument, p)
		}
		out = append(out, strings.ToLower(p))
	}
	return out, nil
}

// MatchQueuePatterns reports whether a queue named name is selected by the
// include and exclude patterns of DepthOptions (an empty include list
// selects every queue). Invalid patterns match nothing.
func MatchQueuePatterns(name string, include, exclude []string) bool {
	n := strings.ToLower(name)
	matchAny := func(ps []string) bool {
		for _, p := range ps {
			if globMatch(strings.ToLower(p), n) {
				return true
			}
		}
		return false
	}
	return (len(include) == 0 || matchAny(include)) && !matchAny(exclude)
}

// globMatch is path.Match without its special case for '/': queue names
// may hold slashes, and "orders_*" must match "orders_eu/1" too. Both
// sides swap '/' for NUL, which no queue name holds.
func globMatch(pattern, name string) bool {
	ok, _ := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(name, "/", "\x00"))
	return ok
}

// depthPhases, when set (by benchmarks), receives how long each phase of
// a successful sample took.
var depthPhases func(discover, catalog, probe time.Duration)

// depthQueue is one discovered queue and what the sample learnt about it.
type depthQueue struct {
	name     string
	rel      string
	oid      string
	seq      string
	vtIndex  bool
	unlogged bool // CreateUnloggedQueue: rows unreadable on a standby, lost in a crash

	found     bool // the catalog still had the table
	in        depthInputs
	sent      int64
	sentKnown bool
	age       float64
	err       error
	invLimit  int64 // the invisible count's cap in the probe; 0: not counted
	// groupVis: the group probe's branch of this queue makes the visible
	// count when needed (else it leaves it out).
	groupVis bool
}

// Sample reports the depth of the selected queues, in name order (named
// queues that do not exist last). It fails as a whole only when the
// queues cannot be listed or the session fails; a queue that cannot be
// sampled carries its own Err.
func (s *DepthSampler) Sample(ctx context.Context) ([]QueueDepth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	depths, err := s.sample(ctx)
	if err != nil {
		if missingPGMQ(err) {
			err = notInstalled(err)
		}
		return nil, &OpError{Op: "sample depths", Queue: strings.Join(s.names, ","), Err: err}
	}
	return depths, nil
}

func (s *DepthSampler) sample(ctx context.Context) (_ []QueueDepth, err error) {
	run, release, err := depthRunnerFor(ctx, s.db)
	if err != nil {
		return nil, err
	}
	defer release()
	dedicated := s.prepared.names != nil
	if pr, ok := run.(pipelineRunner); ok {
		if err := s.prepared.ensureFixed(ctx, pr); err != nil {
			return nil, err
		}
		// Each transaction of the sample starts by setting its own
		// timeouts, local to it: nothing is set on the session. Inside a
		// caller's transaction the caller's settings rule.
		if pr.conn.TxStatus() == 'I' {
			st := s.prepared.stmt(localTimeoutsSQL, durationSetting(s.lockTimeout), durationSetting(s.statementTimeout))
			pr.prefix = &st
			run = pr
		}
	}

	// The catalog of the queues found last time goes in the same round
	// trip as the discovery; it is used when the queues did not change.
	prev := s.last
	pre := s.catalogStmts(prev)
	// On a dedicated connection, the probes of the last sample go in that
	// round trip too, when they are few: used if this sample makes the same.
	spec := s.spec
	s.spec = nil
	if !dedicated {
		spec = nil
	}
	// With few queues, all of it is one transaction: one round trip, one
	// wake-up of each side. Its locks stay bounded (one catalog chunk and
	// at most maxSpeculated probes); if any statement fails, its results
	// are dropped and the sample goes on statement by statement.
	joined := spec != nil && len(pre) == 1
	ahead := slices.Clone(append(pre, spec...))
	if joined {
		for i := range ahead[:len(ahead)-1] {
			ahead[i].joinNext = true
		}
	}
	t0 := time.Now()
	queues, now, standby, preRows, preErrs, err := s.discover(ctx, run, ahead, joined)
	if err != nil {
		return nil, err
	}
	var specRows []depthRows
	var specErrs []error
	if spec != nil {
		specRows, specErrs = preRows[len(pre):], preErrs[len(pre):]
	}
	preRows, preErrs = preRows[:len(pre)], preErrs[:len(pre)]
	if joined && errors.Join(append(slices.Clone(preErrs), specErrs...)...) != nil {
		preRows, preErrs, spec = nil, nil, nil
	}
	s.last = queues
	t1 := time.Now()
	if !sameQueues(prev, queues) {
		preRows, preErrs, spec = nil, nil, nil
	}
	if err := s.readCatalog(ctx, run, queues, standby, preRows, preErrs); err != nil {
		return nil, err
	}
	t2 := time.Now()
	if err := s.probe(ctx, run, queues, speculated{spec, specRows, specErrs}); err != nil {
		return nil, err
	}
	if depthPhases != nil {
		depthPhases(t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	}
	return s.results(queues, now), nil
}

// textArray is names as a PostgreSQL array literal, each element quoted
// (names may hold commas, quotes, braces, backslashes and spaces).
func textArray(names []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(n); j++ {
			if n[j] == '"' || n[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(n[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// durationSetting is d as a PostgreSQL setting in milliseconds; "0" (no
// limit) for zero.
func durationSetting(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// sameQueues reports whether two discoveries found the same tables.
func sameQueues(a, b []*depthQueue) bool {
	return slices.EqualFunc(a, b, func(x, y *depthQueue) bool {
		return x.name == y.name && x.oid == y.oid && x.seq == y.seq && x.rel == y.rel
	})
}

// discover lists the selected queues with the server's clock. extra
// statements are run in the same round trip, after the discovery (in its
// transaction when join); their results are returned as is.
func (s *DepthSampler) discover(ctx context.Context, run depthRunner, extra []depthStmt, join bool) (
	queues []*depthQueue, now time.Time, standby bool, extraRows []depthRows, extraErrs []error, err error) {
	disc := s.prepared.stmt(depthDiscoverSQL, textArray(s.names))
	disc.joinNext = join && len(extra) > 0
	all, errs, err := run.run(ctx, append([]depthStmt{disc}, extra...))
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return nil, time.Time{}, false, nil, nil, err
	}
	extraRows, extraErrs = all[1:], errs[1:]
	rows := all[:1]
	if len(rows[0]) == 0 {
		// No queue: nothing is reported, so the local clock will do.
		return nil, time.Now(), false, extraRows, extraErrs, nil
	}
	c := rows[0][0][5:7] // clock, standby
	now, err = time.Parse("2006-01-02T15:04:05.999999Z", string(c[0]))
	if err != nil {
		return nil, time.Time{}, false, nil, nil, fmt.Errorf("pgmqclient: server clock %q: %w", c[0], err)
	}
	standby = string(c[1]) == "true"
	var out []*depthQueue
	for _, r := range rows[0] {
		q := &depthQueue{name: string(r[0]), rel: string(r[1]), oid: string(r[2]), seq: string(r[3]),
			vtIndex: string(r[4]) == "true", unlogged: string(r[7]) == "true"}
		if MatchQueuePatterns(q.name, s.include, s.exclude) {
			out = append(out, q)
		}
	}
	return out, now, standby, extraRows, extraErrs, nil
}

// readCatalog fills each queue's catalog inputs, a chunk of queues per
// statement. A chunk that fails (a table locked past the lock timeout) is
// read again one queue per statement, so the failure stays with its queue.
//
// preRows and preErrs, when not nil, are the results of catalogStmts(queues)
// already run.
func (s *DepthSampler) readCatalog(ctx context.Context, run depthRunner, queues []*depthQueue, standby bool,
	preRows []depthRows, preErrs []error) error {
	chunks := catalogChunks(queues)
	rows, errs := preRows, preErrs
	if rows == nil {
		var err error
		if rows, errs, err = run.run(ctx, s.catalogStmts(queues)); err != nil {
			return err
		}
	}
	var retry []*depthQueue
	for i, c := range chunks {
		if errs[i] != nil {
			retry = append(retry, c...)
			continue
		}
		if err := s.applyCatalog(c, rows[i], standby); err != nil {
			return err
		}
	}
	if len(retry) == 0 {
		return nil
	}
	stmts := make([]depthStmt, len(retry))
	for i, q := range retry {
		stmts[i] = s.catalogStmt([]*depthQueue{q})
	}
	rows, errs, err := run.run(ctx, stmts)
	if err != nil {
		return err
	}
	for i, q := range retry {
		if errs[i] != nil {
			q.found, q.err = true, errs[i]
			continue
		}
		if err := s.applyCatalog([]*depthQueue{q}, rows[i], standby); err != nil {
			return err
		}
	}
	return nil
}

// catalogChunks cuts queues into the chunks one catalog statement reads.
func catalogChunks(queues []*depthQueue) [][]*depthQueue {
	var chunks [][]*depthQueue
	for start := 0; start < len(queues); start += catalogChunk {
		chunks = append(chunks, queues[start:min(start+catalogChunk, len(queues))])
	}
	return chunks
}

// catalogStmts are the catalog statements of queues, one per chunk.
func (s *DepthSampler) catalogStmts(queues []*depthQueue) []depthStmt {
	chunks := catalogChunks(queues)
	stmts := make([]depthStmt, len(chunks))
	for i, c := range chunks {
		stmts[i] = s.catalogStmt(c)
	}
	return stmts
}

func (s *DepthSampler) catalogStmt(qs []*depthQueue) depthStmt {
	var rels, seqs strings.Builder
	rels.WriteByte('{')
	seqs.WriteByte('{')
	for i, q := range qs {
		if i > 0 {
			rels.WriteByte(',')
			seqs.WriteByte(',')
		}
		rels.WriteString(q.oid)
		seqs.WriteString(q.seq)
	}
	rels.WriteByte('}')
	seqs.WriteByte('}')
	return s.prepared.stmt(depthCatalogSQL, rels.String(), seqs.String())
}

// applyCatalog stores depthCatalogSQL's rows for chunk.
func (s *DepthSampler) applyCatalog(chunk []*depthQueue, rows depthRows, standby bool) error {
	for _, r := range rows {
		i, err := strconv.Atoi(string(r[0]))
		if err != nil || i < 1 || i > len(chunk) {
			return fmt.Errorf("pgmqclient: catalog row for position %q", r[0])
		}
		q := chunk[i-1]
		q.found = true
		q.in.threshold, q.in.standby = s.threshold, standby
		if string(r[1]) == "true" && r[8] != nil {
			// An unlogged queue's sequence starts again at 0 with its
			// table after a crash or a promotion: a total that can go
			// back is left out.
			q.sent, q.sentKnown = parseInt(r[8]), !q.unlogged
		}
		if string(r[2]) == "true" {
			continue // a partitioned table holds no rows itself
		}
		if r[5] == nil {
			continue // dropped meanwhile
		}
		relTuples, err := strconv.ParseFloat(string(r[3]), 64)
		if err != nil {
			return fmt.Errorf("pgmqclient: reltuples %q: %w", r[3], err)
		}
		q.in.leaves = append(q.in.leaves, leafStats{
			relTuples: relTuples,
			relPages:  parseInt(r[4]),
			pages:     parseInt(r[5]),
			live:      parseInt(r[6]),
			rebased:   string(r[7]) == "true",
		})
	}
	return nil
}

func parseInt(b []byte) int64 {
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}

// probe reads the tables the catalog does not prove empty, then takes an
// id sample where the estimate needs one.
//
// sp are statements sent ahead; their results are used when the probe
// statements turn out the same.
func (s *DepthSampler) probe(ctx context.Context, run depthRunner, queues []*depthQueue, sp speculated) error {
	t := s.threshold
	var (
		probed []*depthQueue
		stmts  []depthStmt
		deep   []*depthQueue // probed together, by one prepared statement
	)
	_, pipelined := run.(pipelineRunner)
	grouping := pipelined && s.prepared.names != nil
	for _, q := range queues {
		if q.found && q.err == nil && q.unlogged && q.in.standby {
			// Its rows live on the primary only; the standby's file is
			// empty, which would read as an empty queue.
			q.err = ErrUnloggedOnStandby
			continue
		}
		if !q.found || q.err != nil || catalogEmpty(q.in.leaves) {
			continue
		}
		// Whether the visible count can be spared: trusted statistics
		// must say the queue is above the threshold, the planner's method
		// (a guess here) twice above; the probe counts anyway when the id
		// span is below twice the threshold.
		est, big := bigQueue(q.in, t)
		q.invLimit = t + 1
		if big && !q.vtIndex {
			q.invLimit = 0
		}
		if pages := totalPages(q.in.leaves); pages <= scanPages && pages*maxRowsPerPage <= t {
			q.in.invCounted, q.in.scanned = true, true
			probed = append(probed, q)
			stmts = append(stmts, depthStmt{sql: depthScanSQL(q.rel)})
			continue
		}
		q.in.invCounted = q.invLimit > 0
		if big && grouping && len(deep) < maxPreparedProbes {
			q.groupVis = s.groupVis[q.rel]
			deep = append(deep, q)
			continue
		}
		probed = append(probed, q)
		stmts = append(stmts, depthStmt{sql: depthProbeSQL(q.rel, q.vtIndex), args: probeArgs(t, q.invLimit, !big, est)})
	}
	n := len(stmts)
	if len(deep) > 0 {
		sql := depthGroupSQL(deep, t)
		stmts = append(stmts, depthStmt{sql: sql, name: s.prepared.want(sql)})
	}
	if grouping {
		// Deallocates the group statement of a former set of deep queues.
		if err := s.prepared.sync(ctx, run.(pipelineRunner), stmts[n:]); err != nil {
			return err
		}
	}
	m := len(stmts)
	var (
		rows []depthRows
		errs []error
		err  error
	)
	if sp.matches(stmts) {
		rows, errs = sp.rows, sp.errs
	} else if rows, errs, err = run.run(ctx, stmts); err != nil {
		return err
	}
	if grouping && m <= maxSpeculated {
		s.spec = stmts
	}
	if err := applyProbes(probed, rows, errs); err != nil {
		return err
	}
	if len(deep) > 0 {
		if errs[n] == nil {
			for _, r := range rows[n] {
				i, err := strconv.Atoi(string(r[0]))
				if err != nil || i < 0 || i >= len(deep) {
					return fmt.Errorf("pgmqclient: probe row for position %q", r[0])
				}
				applyProbe(deep[i], r[1:])
			}
			// A branch that left the visible count out, where the probe
			// would have made it: that queue is probed again alone, and
			// its branch makes the count from the next sample on.
			var again []*depthQueue
			groupVis := make(map[string]bool)
			for _, q := range deep {
				if needsVisibleCount(q.in, t) {
					groupVis[q.rel] = true
					if !q.groupVis {
						again = append(again, q)
					}
				}
			}
			s.groupVis = groupVis
			if err := s.probeAlone(ctx, run, again); err != nil {
				return err
			}
		} else if err := s.probeAlone(ctx, run, deep); err != nil {
			// One of them failed the group (a locked table): probe each
			// alone, so the failure stays with its queue.
			return err
		}
		probed = append(probed, deep...)
	}
	var (
		sampled []*depthQueue
		samples []depthStmt
	)
	for _, q := range probed {
		if q.err != nil || !q.in.hasRows {
			continue
		}
		if estimateDepth(q.in).needSample {
			sampled = append(sampled, q)
			samples = append(samples, sampleStmt(q))
		}
	}
	if len(samples) == 0 {
		return nil
	}
	rows, errs, err = run.run(ctx, samples)
	if err != nil {
		return err
	}
	for i, q := range sampled {
		if errs[i] != nil {
			q.err = errs[i]
			continue
		}
		r := rows[i][0]
		sm := q.in.sample
		sm.hits, sm.visibleHits = parseInt(r[0]), parseInt(r[1])
		sm.total, sm.visibleTotal = parseInt(r[2]), parseInt(r[3])
	}
	return nil
}

// applyProbe stores a probe's row (depthProbeSQL's columns).
func applyProbe(q *depthQueue, r [][]byte) {
	q.in.hasRows = false
	if r[0] == nil || r[1] == nil {
		return // empty
	}
	q.in.hasRows = true
	q.in.lo, q.in.hi = parseInt(r[0]), parseInt(r[1])
	q.age, _ = strconv.ParseFloat(string(r[2]), 64)
	q.in.inv, q.in.vis = parseInt(r[3]), parseInt(r[4])
	q.in.visCount = string(r[5]) == "true"
}

// needsVisibleCount reports whether the probe of a queue above the
// threshold makes the visible count (depthProbeSQL's condition): the
// invisible count passed the threshold, or the id span is below twice the
// threshold.
func needsVisibleCount(in depthInputs, t int64) bool {
	est, big := bigQueue(in, t)
	return in.hasRows && (!big || in.inv > t || in.hi-in.lo < 2*(t+1) || est-in.inv <= t)
}

// bigQueue returns the estimate of a queue's depth from its statistics
// (or, short of trusted ones, the planner's method) and whether it says
// the queue is so far above the threshold t that its visible count may be
// spared: trusted statistics above t+1, the planner's guess above twice
// that. The probe still counts when the estimate leaves t or fewer visible
// messages beside the counted invisible ones: a visible side at or below
// the threshold is counted, never estimated, and a count above it refutes
// statistics gone stale (a switchover and back keeps a table's old
// n_live_tup with its vacuum times).
func bigQueue(in depthInputs, t int64) (est int64, big bool) {
	if est, ok := statsEstimate(in); ok {
		return est, est > t+1
	}
	if est, ok := plannerEstimate(in); ok {
		return est, est > 2*(t+1)
	}
	return 0, false
}

// probeArgs are depthProbeSQL's arguments: the threshold, the invisible
// count's cap, whether to count the visible side in any case, and the
// estimate that may spare it.
func probeArgs(t, invLimit int64, countVisible bool, est int64) []string {
	return []string{strconv.FormatInt(t, 10), strconv.FormatInt(invLimit, 10), strconv.FormatBool(countVisible), strconv.FormatInt(est, 10)}
}

// probeAlone probes each of the deep queues with its own statement.
func (s *DepthSampler) probeAlone(ctx context.Context, run depthRunner, deep []*depthQueue) error {
	if len(deep) == 0 {
		return nil
	}
	t := s.threshold
	stmts := make([]depthStmt, len(deep))
	for i, q := range deep {
		est, _ := bigQueue(q.in, t)
		stmts[i] = depthStmt{sql: depthProbeSQL(q.rel, q.vtIndex), args: probeArgs(t, q.invLimit, false, est)}
	}
	rows, errs, err := run.run(ctx, stmts)
	if err != nil {
		return err
	}
	return applyProbes(deep, rows, errs)
}

// sampleStmt draws sampleProbes ids (splitProbes when the states must be
// split) in as many strata of the queue's id span, or every id when the
// span is no larger.
func sampleStmt(q *depthQueue) depthStmt {
	span := q.in.hi - q.in.lo + 1
	k := int64(sampleProbes)
	if needsSplit(q.in) {
		k = splitProbes
	}
	step := float64(span) / float64(k)
	if span <= k {
		k, step = span, 1
	}
	q.in.sample = &idSample{probes: k, exhaustive: span == k && step == 1}
	return depthStmt{sql: depthSampleSQL(q.rel), args: []string{
		strconv.FormatInt(q.in.lo, 10), strconv.FormatInt(k, 10), strconv.FormatFloat(step, 'g', -1, 64)}}
}

// results assembles the QueueDepths, in discovery order, then the named
// queues that were not found.
func (s *DepthSampler) results(queues []*depthQueue, now time.Time) []QueueDepth {
	out := make([]QueueDepth, 0, len(queues))
	seen := make(map[string]bool, len(queues))
	for _, q := range queues {
		seen[strings.ToLower(q.name)] = true
		if !q.found {
			continue // dropped while sampled
		}
		var pgErr *pgconn.PgError
		if errors.As(q.err, &pgErr) && pgErr.Code == "42P01" {
			continue // dropped while sampled
		}
		d := QueueDepth{Queue: q.name, SampledAt: now, TotalSent: q.sent, TotalSentKnown: q.sentKnown}
		if q.err != nil {
			d.Err = &OpError{Op: "sample depths", Queue: q.name, Err: q.err}
			out = append(out, d)
			continue
		}
		if q.in.hasRows && q.age > 0 {
			d.OldestAge = time.Duration(q.age * float64(time.Second))
		}
		e := estimateDepth(q.in)
		switch {
		case e.unknown != "":
			d.Err = &OpError{Op: "sample depths", Queue: q.name, Err: &DepthUnknownError{Reason: e.unknown}}
		case e.needSample:
			d.Err = &OpError{Op: "sample depths", Queue: q.name, Err: &DepthUnknownError{Reason: ReasonNoEstimate}}
		default:
			d.Depth, d.Visible, d.Invisible = e.depth, e.visible, e.invisible
			d.VisibleMethod, d.InvisibleMethod, d.Source = e.visibleMethod, e.invisibleMethod, e.source
			d.Method = MethodCount
			if d.VisibleMethod != MethodCount || d.InvisibleMethod != MethodCount {
				d.Method = MethodEstimate
			}
			d.Estimated = d.Method == MethodEstimate
		}
		out = append(out, d)
	}
	for _, n := range s.names {
		if !seen[n] {
			out = append(out, QueueDepth{Queue: n, SampledAt: now,
				Err: &OpError{Op: "sample depths", Queue: n, Err: ErrQueueNotFound}})
			seen[n] = true
		}
	}
	return out
}

// applyProbes applies the probe results of qs, in order: a statement that
// failed marks its queue's error, one that answered applies its single row.
func applyProbes(qs []*depthQueue, rows []depthRows, errs []error) error {
	for i, q := range qs {
		if errs[i] != nil {
			q.err = errs[i]
			continue
		}
		if len(rows[i]) != 1 {
			return fmt.Errorf("pgmqclient: probe of %s returned %d rows", q.name, len(rows[i]))
		}
		applyProbe(q, rows[i][0])
	}
	return nil
}
