package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Partitioned queues: the queue table (and, once converted, the archive)
// is split into partitions that pg_partman creates ahead and drops after
// the retention. PGMQ supports pg_partman 4 and 5.

// ErrPartmanMissing is wrapped by CreatePartitioned and
// ConvertArchivePartitioned when the pg_partman extension is not installed
// in the database (CREATE EXTENSION pg_partman).
var ErrPartmanMissing = errors.New("pgmqclient: pg_partman is not installed")

// PartitionOption adjusts CreatePartitioned and ConvertArchivePartitioned.
type PartitionOption func(*partitionOptions)

type partitionOptions struct {
	interval, retention string
	premake, leading    *int
}

// WithPartitionInterval sets how much each partition holds: a number of
// messages ("10000", partitions by msg_id; PGMQ's default) or a time span
// ("1 day", "6 hours", partitions by enqueued_at). "" is ignored.
func WithPartitionInterval(interval string) PartitionOption {
	return func(o *partitionOptions) {
		if interval != "" {
			o.interval = interval
		}
	}
}

// WithRetentionInterval sets how much is kept before pg_partman drops old
// partitions, in the same kind of unit as the partition interval ("100000"
// messages, PGMQ's default, or "7 days"). "" is ignored.
func WithRetentionInterval(retention string) PartitionOption {
	return func(o *partitionOptions) {
		if retention != "" {
			o.retention = retention
		}
	}
}

// WithPremake sets how many partitions pg_partman creates ahead (at least
// 1; PGMQ's default is 4). CreatePartitioned only; it needs a release whose
// create_partitioned takes it (1.12.1 on), and gives an error matching
// ErrUnsupported otherwise.
func WithPremake(n int) PartitionOption { return func(o *partitionOptions) { o.premake = &n } }

// WithLeadingPartition sets how many partitions ConvertArchivePartitioned
// creates ahead (at least 1; PGMQ's default is 10).
func WithLeadingPartition(n int) PartitionOption { return func(o *partitionOptions) { o.leading = &n } }

var (
	countInterval = regexp.MustCompile(`^[0-9]+$`)
	timeInterval  = regexp.MustCompile(`^([0-9]+ ?(microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|months?|years?) ?)+$`)
)

// intervalKind is "count", "time" or "" for an interval PGMQ cannot use.
func intervalKind(s string) string {
	switch {
	case countInterval.MatchString(s):
		if n, err := strconv.ParseInt(s, 10, 32); err != nil || n < 1 {
			return ""
		}
		return "count"
	case timeInterval.MatchString(s):
		return "time"
	}
	return ""
}

// partitionArgs applies opts and checks that both intervals are of the
// same kind, with PGMQ's defaults for those not given.
func partitionArgs(opts []PartitionOption) (partitionOptions, error) {
	o := partitionOptions{interval: "10000", retention: "100000"}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	ik, rk := intervalKind(o.interval), intervalKind(o.retention)
	switch {
	case ik == "":
		return o, fmt.Errorf("%w: partition interval %q is neither a message count nor a time span like \"1 day\"", ErrInvalidArgument, o.interval)
	case rk == "":
		return o, fmt.Errorf("%w: retention interval %q is neither a message count nor a time span like \"7 days\"", ErrInvalidArgument, o.retention)
	case ik != rk:
		return o, fmt.Errorf("%w: partition interval %q and retention %q must both be message counts or both time spans", ErrInvalidArgument, o.interval, o.retention)
	case o.premake != nil && *o.premake < 1:
		return o, fmt.Errorf("%w: premake must be at least 1, got %d", ErrInvalidArgument, *o.premake)
	case o.leading != nil && *o.leading < 1:
		return o, fmt.Errorf("%w: leading partitions must be at least 1, got %d", ErrInvalidArgument, *o.leading)
	}
	return o, nil
}

// CreatePartitioned creates a partitioned queue (pgmq.create_partitioned).
// pg_partman must be installed in the database; otherwise the error wraps
// ErrPartmanMissing. Options: WithPartitionInterval, WithRetentionInterval,
// WithPremake.
func (c *Client) CreatePartitioned(ctx context.Context, queue string, opts ...PartitionOption) error {
	const op = "create partitioned"
	if err := ValidateQueueName(queue); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	o, err := partitionArgs(opts)
	if err == nil && o.leading != nil {
		err = fmt.Errorf("%w: WithLeadingPartition is for ConvertArchivePartitioned", ErrInvalidArgument)
	}
	if err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.requirePartman(ctx, op, queue, FeaturePartitioned); err != nil {
		return err
	}
	if o.premake == nil {
		_, err = c.db.Exec(ctx, `SELECT pgmq.create_partitioned($1::text, $2::text, $3::text)`, queue, o.interval, o.retention)
	} else {
		caps, _ := c.Capabilities(ctx)
		if !caps.HasFunction("create_partitioned", textArg, textArg, textArg, integerArg) {
			return &OpError{Op: op, Queue: queue, Err: &UnsupportedError{Feature: FeaturePartitioned, Installed: caps.installed() + ", create_partitioned without premake"}}
		}
		_, err = c.db.Exec(ctx, `SELECT pgmq.create_partitioned($1::text, $2::text, $3::text, $4::integer)`, queue, o.interval, o.retention, int32(*o.premake))
	}
	if err != nil {
		return opErr(c.db, op, queue, err)
	}
	return nil
}

// ConvertArchivePartitioned replaces the queue's archive table by a
// partitioned one (pgmq.convert_archive_partitioned, PGMQ 1.4.0 on). PGMQ
// keeps the old archive, renamed pgmq.a_<queue>_old, and does not move its
// rows; converting an archive that is already partitioned does nothing.
// pg_partman must be installed. Options: WithPartitionInterval,
// WithRetentionInterval, WithLeadingPartition.
func (c *Client) ConvertArchivePartitioned(ctx context.Context, queue string, opts ...PartitionOption) error {
	const op = "convert archive partitioned"
	if err := ValidateQueueName(queue); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	o, err := partitionArgs(opts)
	if err == nil && o.premake != nil {
		err = fmt.Errorf("%w: WithPremake is for CreatePartitioned", ErrInvalidArgument)
	}
	if err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.requirePartman(ctx, op, queue, FeatureConvertArchivePartitioned); err != nil {
		return err
	}
	leading := 10
	if o.leading != nil {
		leading = *o.leading
	}
	if _, err := c.db.Exec(ctx, `SELECT pgmq.convert_archive_partitioned($1::text, $2::text, $3::text, $4::integer)`,
		queue, o.interval, o.retention, int32(leading)); err != nil {
		return opErr(c.db, op, queue, err)
	}
	return nil
}

// requirePartman checks the feature, then that pg_partman is installed (on
// every call: it may be installed after the client looked at PGMQ).
func (c *Client) requirePartman(ctx context.Context, op, queue string, f Feature) error {
	if err := c.require(ctx, op, queue, f); err != nil {
		return err
	}
	var version string
	err := c.db.QueryRow(ctx, `SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_partman'`).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return &OpError{Op: op, Queue: queue, Err: ErrPartmanMissing}
	case err != nil:
		return opErr(c.db, op, queue, err)
	}
	return nil
}
