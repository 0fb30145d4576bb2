package queuesampler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// Defaults.
const (
	// DefaultSampleTimeout bounds one sample, connection and election
	// included.
	DefaultSampleTimeout = 2 * time.Second
	// DefaultMinInterval is the shortest time between two samples; calls
	// in between (several readers, health checks) reuse the last sample.
	DefaultMinInterval = time.Second
	// DefaultElectionTTL is the election lease's lifetime when the caller
	// gives none (otelmetrics derives one from the export interval).
	DefaultElectionTTL = 30 * time.Second
)

// ErrInvalidElectionTTL is returned by New when Config.ElectionTTL is too
// short for the leader to renew its lease between two samples.
var ErrInvalidElectionTTL = errors.New("invalid election TTL")

// Config configures a Sampler of one database. Only Conn is required.
type Config struct {
	// Conn is how the sampler connects: its connection config,
	// BeforeConnect (which may supply a fresh password or token) and
	// AfterConnect run as pgxpool would run them, and its query exec mode
	// chooses the wire form (see queuedepth.Sampler.Sample). Usually the
	// application's pool's Config(); it is copied.
	Conn *pgxpool.Config
	// Depth selects the queues and how they are counted. Its
	// StatementTimeout and KeepPrepared are set by the sampler.
	Depth queuedepth.Options
	// SampleTimeout bounds one sample; zero means DefaultSampleTimeout.
	SampleTimeout time.Duration
	// MinInterval is the shortest time between two samples; zero means
	// DefaultMinInterval, a negative value samples at every call.
	MinInterval time.Duration
	// NoElection samples at every call, whatever other replicas do. By
	// default the replicas sampling the same queues of the same database
	// elect one sampler (see ElectionKey).
	NoElection bool
	// ElectionKey names the election; zero derives it from the queue
	// selection (Depth.Queues, Include and Exclude), so replicas sampling
	// the same queues elect one sampler and replicas sampling others
	// elect their own.
	ElectionKey int64
	// NoElectionDDL makes the sampler never run ElectionDDL: a missing
	// lease table, or one made by an earlier release, is then a failure
	// counted by its SQLSTATE (42P01 or 3F000 for a missing table, 42703
	// for one without a column this release writes) until the migration runs
	// (deploy/postgres/election-lease.sql, the same SQL). By default the
	// sampler creates or upgrades the table at its first election when its
	// role may: figures appear with no extra step where the role owns its
	// database, and a role that may not gets a counted 42501 naming the
	// fix. Set it where schema changes go through migrations only.
	NoElectionDDL bool
	// ElectionTTL is the lease's lifetime from each renewal; zero means
	// DefaultElectionTTL, raised to at least twice MinInterval plus
	// SampleTimeout. A TTL given must exceed MinInterval plus
	// SampleTimeout.
	ElectionTTL time.Duration
	// ExportHealthy, when not nil, says whether this replica's figures
	// reach their backend: a leader for which it turns false marks its
	// lease unhealthy, and a healthy replica takes it over.
	ExportHealthy func() bool
	// OnError receives each distinct failure once (a sample's failure by
	// operation and error type, a queue's by its message) until the next
	// success; nil drops them. It must not block.
	OnError func(error)
	// Now is the clock of the throttle; nil means time.Now.
	Now func() time.Time
}

// withDefaults validates cfg and fills in the defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Conn == nil {
		return cfg, errors.New("queuesampler: no connection config")
	}
	cfg.Conn = cfg.Conn.Copy()
	if err := cfg.Depth.Validate(); err != nil {
		return cfg, fmt.Errorf("queuesampler: %w", err)
	}
	if cfg.SampleTimeout <= 0 {
		cfg.SampleTimeout = DefaultSampleTimeout
	}
	switch {
	case cfg.MinInterval == 0:
		cfg.MinInterval = DefaultMinInterval
	case cfg.MinInterval < 0:
		cfg.MinInterval = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	// The leader renews at each sample, and samples come at most every
	// minimum interval: the lease must outlast that.
	floor := cfg.MinInterval + cfg.SampleTimeout
	switch {
	case cfg.ElectionTTL <= 0:
		cfg.ElectionTTL = max(DefaultElectionTTL, 2*floor)
	case !cfg.NoElection && cfg.ElectionTTL <= floor:
		return cfg, fmt.Errorf("queuesampler: %w: election TTL %v must exceed the minimum interval plus the sample timeout (%v)",
			ErrInvalidElectionTTL, cfg.ElectionTTL, floor)
	}
	if cfg.ElectionKey == 0 {
		cfg.ElectionKey = ElectionKey(cfg.Depth)
	}
	return cfg, nil
}

// ElectionKey is the election key derived from a queue selection: the
// named queues (lower-cased, as PGMQ folds them, sorted, without
// repeats), then the include and the exclude patterns (lower-cased,
// sorted, without repeats), each part and each item length-prefixed, so
// no two selections share a key by the way they are written (queue "a,b"
// and the pair "a", "b" differ, as do a name and a pattern).
func ElectionKey(sel queuedepth.Options) int64 {
	h := fnv.New64a()
	h.Write([]byte("pgmqotel/queue-sampler/v2"))
	for _, part := range [][]string{sel.Queues, sel.Include, sel.Exclude} {
		items := make([]string, len(part))
		for i, s := range part {
			items[i] = strings.ToLower(s)
		}
		slices.Sort(items)
		items = slices.Compact(items)
		writeLen(h, len(items))
		for _, s := range items {
			writeLen(h, len(s))
			h.Write([]byte(s))
		}
	}
	return int64(h.Sum64())
}

func writeLen(h interface{ Write([]byte) (int, error) }, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}
