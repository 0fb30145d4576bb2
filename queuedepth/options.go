package queuedepth

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
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

// DefaultLockTimeout is how long a sample waits for a lock on one queue's
// table (held, for example, by ALTER TABLE, VACUUM FULL or LOCK TABLE)
// before it gives that queue up and goes on with the others.
const DefaultLockTimeout = 100 * time.Millisecond

// Options select the queues a sample reports and how it counts. The zero
// value samples every queue with the defaults.
type Options struct {
	// Queues limits the sample to these queues. Empty means every queue in
	// pgmq.meta, discovered at each sample. A named queue that does not
	// exist is reported in the result with an Err matching
	// pgmqclient.ErrQueueNotFound.
	Queues []string
	// Include, when not empty, keeps only the queues whose name matches
	// one of these patterns; Exclude then drops those matching any of its
	// patterns. Patterns are path.Match globs ("orders_*", "tmp_?"), in
	// which '*' and '?' also match '/', matched against the lower-cased
	// name, and are checked by New.
	Include, Exclude []string
	// ExactCountThreshold is the largest depth counted exactly; zero means
	// DefaultExactCountThreshold.
	ExactCountThreshold int64
	// LockTimeout bounds the wait for one queue table's lock; zero means
	// DefaultLockTimeout. A queue whose table stays locked longer is
	// reported with an Err; the others are sampled.
	LockTimeout time.Duration
	// StatementTimeout, when positive, bounds each of the sampler's
	// statements on the server, so that a slow statement ends there before
	// the caller's context does (which would make pgx close the
	// connection).
	StatementTimeout time.Duration
	// KeepPrepared lets the sampler keep a few statements prepared on a
	// connection it samples again and again (its fixed statements and one
	// probe of the queues above the threshold), when that connection is
	// proven to reach the server directly: deep queues then cost no
	// planning. Set it only for a connection of the sampler's own. Behind a
	// pooler nothing is ever prepared.
	KeepPrepared bool
}

// config is Options checked and normalized.
type config struct {
	names            []string // lower-cased, sorted as given; empty means all queues
	include, exclude []string // lower-cased patterns
	threshold        int64
	lockTimeout      time.Duration
	statementTimeout time.Duration
	keepPrepared     bool
}

// check validates opts before any SQL: every error matches
// pgmqclient.ErrInvalidArgument or pgmqclient.ErrInvalidQueueName.
func (opts Options) check() (config, error) {
	c := config{threshold: opts.ExactCountThreshold, lockTimeout: opts.LockTimeout,
		statementTimeout: opts.StatementTimeout, keepPrepared: opts.KeepPrepared}
	if c.threshold == 0 {
		c.threshold = DefaultExactCountThreshold
	}
	if c.threshold < 0 || c.threshold > MaxExactCountThreshold {
		return config{}, invalid("exact count threshold %d is outside 0..%d", c.threshold, int64(MaxExactCountThreshold))
	}
	if c.lockTimeout == 0 {
		c.lockTimeout = DefaultLockTimeout
	}
	if c.lockTimeout < time.Millisecond {
		return config{}, invalid("lock timeout %v is below 1ms", opts.LockTimeout)
	}
	if c.statementTimeout < 0 {
		return config{}, invalid("negative statement timeout %v", opts.StatementTimeout)
	}
	for _, q := range opts.Queues {
		if err := pgmqclient.ValidateQueueName(q); err != nil {
			return config{}, fmt.Errorf("queuedepth: %w", err)
		}
		c.names = append(c.names, strings.ToLower(q))
	}
	var err error
	if c.include, err = patterns(opts.Include); err != nil {
		return config{}, err
	}
	if c.exclude, err = patterns(opts.Exclude); err != nil {
		return config{}, err
	}
	return c, nil
}

// Validate checks opts as New does, before any SQL.
func (opts Options) Validate() error {
	_, err := opts.check()
	return err
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("queuedepth: %w: "+format, append([]any{pgmqclient.ErrInvalidArgument}, args...)...)
}

// patterns checks and lower-cases glob patterns.
func patterns(ps []string) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, invalid("queue pattern %q is not a valid glob", p)
		}
		out = append(out, strings.ToLower(p))
	}
	return out, nil
}

// MatchPatterns reports whether a queue named name is selected by the
// include and exclude patterns of Options (an empty include list selects
// every queue). Invalid patterns match nothing.
func MatchPatterns(name string, include, exclude []string) bool {
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
