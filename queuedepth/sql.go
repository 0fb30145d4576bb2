package queuedepth

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// All SQL of the sampler lives in this file, each statement beside the
// columns it returns; the stages read rows by these column names (see
// row). Statements that read only catalogs have fixed text; statements
// that read a queue's table are built by the functions below from the
// table name the server reported (never from a queue name as given),
// quoted as an identifier by queueTable. Every column is text, so that
// both wire forms (the extended protocol and the simple one) decode the
// same way.
//
// The counts place each message by its vt against the clock at the time
// the statement reads the table, after its snapshot was taken
// (clock_timestamp() in a materialized CTE, read through an InitPlan so
// the vt index still serves the comparison), not against now(), the start
// of the transaction: PGMQ stamps vt with clock_timestamp() at send, so a
// message committed after a transaction began would read as in flight
// when compared with now().

// Columns of discoverSQL.
const (
	colQueue    = "queue_name"
	colRel      = "rel"
	colRelOID   = "rel_oid"
	colSeqOID   = "seq_oid"
	colVTIndex  = "vt_index"
	colUnlogged = "unlogged"
	colClock    = "clock"
	colStandby  = "standby"
	colPID      = "backend_pid"
)

// discoverSQL lists the queues (pgmq.meta joined to the catalog) with
// their table's oid, its id sequence's oid (0 when missing), whether an
// index leads with vt (looked up for partitioned queues only, which some
// PGMQ releases create without one; PGMQ indexes every plain queue table
// on vt) and whether the table is unlogged; and in every row the server's
// clock (UTC), whether it is a standby, and the serving backend's process
// id (which tells a direct connection from a pooler's). It reads catalogs
// only and takes no lock on any queue table. The table and the sequence
// are looked up through pg_class's (relname, relnamespace) index, one
// lookup per queue (LIMIT 1 keeps the planner from scanning pg_class).
// Queue names never reach SQL as text: $1 is a bind parameter.
const discoverSQL = `
SELECT m.queue_name AS queue_name, c.relname::text AS rel, c.oid::text AS rel_oid,
	coalesce(s.oid, 0)::text AS seq_oid,
	(c.relkind = 'r' OR EXISTS (
		SELECT 1 FROM pg_catalog.pg_index AS i
		JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'vt'
		WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum
	))::text AS vt_index,
	(c.relpersistence = 'u')::text AS unlogged,
	k.clock, k.standby, k.backend_pid
FROM pgmq.meta AS m
CROSS JOIN (
	SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS clock,
		pg_catalog.pg_is_in_recovery()::text AS standby, pg_catalog.pg_backend_pid()::text AS backend_pid
) AS k
CROSS JOIN LATERAL (
	SELECT c.oid, c.relname, c.relkind, c.relpersistence FROM pg_catalog.pg_class AS c
	WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname = 'q_' || lower(m.queue_name) AND c.relkind IN ('r', 'p')
	LIMIT 1
) AS c
LEFT JOIN LATERAL (
	SELECT s.oid FROM pg_catalog.pg_class AS s
	WHERE s.relnamespace = 'pgmq'::regnamespace AND s.relname = c.relname || '_msg_id_seq' AND s.relkind = 'S'
	LIMIT 1
) AS s ON true
WHERE cardinality($1::text[]) = 0 OR lower(m.queue_name) = ANY ($1::text[])
ORDER BY m.queue_name`

// Columns of catalogSQL.
const (
	colPos         = "pos"
	colRoot        = "root"
	colPartitioned = "partitioned"
	colRelTuples   = "reltuples"
	colRelPages    = "relpages"
	colPages       = "pages"
	colLive        = "live"
	colRebased     = "rebased"
	colLastValue   = "last_value"
)

// catalogSQL reads what the server knows about a chunk of queue tables
// without reading the tables: one row per table and per partition (a
// partitioned queue's leaves are found through pg_inherits), with the
// planner's inputs (reltuples, relpages), the current size in pages, the
// statistics' live rows and whether a VACUUM or ANALYZE has re-based them
// since the statistics were last lost, and, in the queue's own row, its id
// sequence's last value (NULL on a standby, where it runs up to 32 ahead).
//
// $1 are the tables' oids and $2 their sequences' oids (0: none), in
// order; pos is the position in those arrays (1-based). The text is fixed
// whatever the queues, and the locks it takes (pg_relation_size locks each
// table, pg_sequence_last_value each sequence) are bounded by the chunk
// size. pg_relation_size comes before pg_sequence_last_value in each row:
// table before sequence is the order DROP TABLE locks them in. A table
// dropped meanwhile has no row or a NULL size. pg_class is looked up by
// oid, one index lookup per table and per sequence.
const catalogSQL = `
WITH RECURSIVE tree (i, rel, seq, root) AS (
	SELECT u.i, u.rel, u.seq, true
	FROM unnest($1::oid[], $2::oid[]) WITH ORDINALITY AS u (rel, seq, i)
	UNION ALL
	SELECT t.i, h.inhrelid, 0::oid, false
	FROM tree AS t JOIN pg_catalog.pg_inherits AS h ON h.inhparent = t.rel
)
SELECT t.i::text AS pos, t.root::text AS root, (c.relkind = 'p')::text AS partitioned,
	c.reltuples::float8::text AS reltuples, c.relpages::text AS relpages,
	CASE WHEN c.relkind = 'p' THEN 0
		ELSE pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint END::text AS pages,
	pg_catalog.pg_stat_get_live_tuples(c.oid)::text AS live,
	(pg_catalog.pg_stat_get_last_vacuum_time(c.oid) IS NOT NULL
		OR pg_catalog.pg_stat_get_last_autovacuum_time(c.oid) IS NOT NULL
		OR pg_catalog.pg_stat_get_last_analyze_time(c.oid) IS NOT NULL
		OR pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL)::text AS rebased,
	CASE WHEN s.oid IS NOT NULL AND NOT pg_catalog.pg_is_in_recovery()
		THEN coalesce(pg_catalog.pg_sequence_last_value(s.oid), 0) END::text AS last_value
FROM tree AS t
CROSS JOIN LATERAL (
	SELECT c.oid, c.relkind, c.reltuples, c.relpages FROM pg_catalog.pg_class AS c
	WHERE c.oid = t.rel AND c.relkind IN ('r', 'p')
	LIMIT 1
) AS c
LEFT JOIN LATERAL (
	SELECT s.oid FROM pg_catalog.pg_class AS s
	WHERE t.root AND s.oid = t.seq
	LIMIT 1
) AS s ON true
ORDER BY t.i, NOT t.root`

// colExisting is the column of existingSQL.
const colExisting = "existing"

// existingSQL returns which of the tables $1 (oids) still exist. It reads
// pg_class only, so it takes no lock: the sampler asks it about the queues
// whose statements failed, and a queue whose table is gone was dropped
// while sampled, which is not an error.
const existingSQL = `SELECT c.oid::text AS existing FROM pg_catalog.pg_class AS c WHERE c.oid = ANY ($1::oid[])`

// localTimeoutsSQL sets lock_timeout ($1) and statement_timeout ($2) for
// the transaction in progress only: the sampler sends it at the start of
// each of its transactions, so that nothing is set on the session.
const localTimeoutsSQL = `SELECT pg_catalog.set_config('lock_timeout', $1::text, true), pg_catalog.set_config('statement_timeout', $2::text, true)`

// queueTable is the single identifier-quoting builder of this file: the
// queue table pgmq.<rel>, rel being the table name the catalog reported.
func queueTable(rel string) string {
	return pgx.Identifier{"pgmq", rel}.Sanitize()
}

// clockCTE and clock give a statement the clock it places messages by:
// read once, after the statement's snapshot was taken, and used through
// an InitPlan, which an index scan on vt accepts as a bound.
const (
	clockCTE = `WITH k AS MATERIALIZED (SELECT pg_catalog.clock_timestamp() AS t)
`
	clock = `(SELECT t FROM k)`
)

// Columns of probeSQL, scanSQL and groupSQL (which adds colPos).
const (
	colLo         = "lo"
	colHi         = "hi"
	colAge        = "age"
	colInvisible  = "invisible"
	colVisible    = "visible"
	colVisCounted = "visible_counted"
)

// probeSQL reads one queue table in one statement, through its indexes:
// the smallest and largest msg_id, the oldest message's age in seconds, a
// count of invisible rows (vt after the clock) capped at $2 rows, and a
// count of visible rows capped at threshold+1, or not made (limit 0) when
// $3 is false, the invisible count did not pass the threshold $1, the id
// span is over twice the threshold, and the estimate $4 leaves more than
// the threshold visible beside the invisible count: the caller then knows
// from the statistics that the queue is far above the threshold, and the
// visible side is estimated. visible_counted says whether the visible
// count was made.
//
// With a vt index (vtIndex) the counts walk it (ORDER BY vt keeps the
// planner on the index); without one (partitioned queues of some PGMQ
// releases) they scan, so the caller passes limits of 0 for big queues.
func probeSQL(rel string, vtIndex bool) string {
	t := queueTable(rel)
	order := ""
	if vtIndex {
		order = " ORDER BY vt"
	}
	return clockCTE + `SELECT lo.msg_id::text AS lo, hi.msg_id::text AS hi,
	extract(epoch FROM ` + clock + ` - lo.enqueued_at)::float8::text AS age,
	inv.n::text AS invisible, vis.n::text AS visible, (l.lim > 0)::text AS visible_counted
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ` + t + ` ORDER BY msg_id LIMIT 1) AS lo ON true
LEFT JOIN LATERAL (SELECT msg_id FROM ` + t + ` ORDER BY msg_id DESC LIMIT 1) AS hi ON true
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + t + ` WHERE vt > ` + clock + order + ` LIMIT $2::bigint) AS s) AS inv
CROSS JOIN LATERAL (SELECT CASE WHEN $3::bool OR inv.n > $1::bigint OR hi.msg_id - lo.msg_id < 2 * ($1::bigint + 1)
		OR $4::bigint - inv.n <= $1::bigint
	THEN $1::bigint + 1 ELSE 0 END AS lim) AS l
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + t + ` WHERE vt <= ` + clock + order + ` LIMIT l.lim) AS s) AS vis`
}

// groupBranch is one queue of groupSQL.
type groupBranch struct {
	rel      string
	vtIndex  bool
	invLimit int64
	visible  bool // make the visible count (capped at threshold+1)
}

// groupSQL probes several queues above the threshold in one statement,
// one UNION ALL branch per queue, each returning its position (pos) and
// probeSQL's columns. Limits are literals (numbers the sampler computed);
// the visible count is made only in the branches marked visible (the
// queues that needed it last time): elsewhere the branch leaves it out
// (0, not counted), which spares a quarter of the statement's cost, and
// the sampler probes such a queue again alone in the rare sample where it
// turns out to need it (see needsVisibleCount). On a direct connection of
// its own the sampler keeps it prepared, at most maxPreparedProbes
// branches: it spares the planning and a round trip per deep queue.
func groupSQL(branches []groupBranch, threshold int64) string {
	var b strings.Builder
	b.WriteString(clockCTE)
	capped := strconv.FormatInt(threshold+1, 10)
	for i, q := range branches {
		// The first branch names the columns of the union.
		as := func(col string) string {
			if i > 0 {
				return ""
			}
			return " AS " + col
		}
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		tbl := queueTable(q.rel)
		order := ""
		if q.vtIndex {
			order = " ORDER BY vt"
		}
		vis := `'0'` + as(colVisible) + `, 'false'` + as(colVisCounted)
		if q.visible {
			vis = `vis.n::text` + as(colVisible) + `, 'true'` + as(colVisCounted)
		}
		b.WriteString(`SELECT ` + strconv.Itoa(i) + `::text` + as(colPos) + `, lo.msg_id::text` + as(colLo) +
			`, hi.msg_id::text` + as(colHi) + `,
	extract(epoch FROM ` + clock + ` - lo.enqueued_at)::float8::text` + as(colAge) + `,
	inv.n::text` + as(colInvisible) + `, ` + vis + `
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ` + tbl + ` ORDER BY msg_id LIMIT 1) AS lo ON true
LEFT JOIN LATERAL (SELECT msg_id FROM ` + tbl + ` ORDER BY msg_id DESC LIMIT 1) AS hi ON true
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + tbl + ` WHERE vt > ` + clock + order + ` LIMIT ` + strconv.FormatInt(q.invLimit, 10) + `) AS s) AS inv`)
		if q.visible {
			b.WriteString(`
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + tbl + ` WHERE vt <= ` + clock + order + ` LIMIT ` + capped + `) AS s) AS vis`)
		}
	}
	return b.String()
}

// scanSQL is probeSQL for a table of a few pages: one scan counts every
// row, which costs less than planning the probe's four index lookups.
// Same columns; both counts are exact, uncapped.
func scanSQL(rel string) string {
	return clockCTE + `SELECT min(msg_id)::text AS lo, max(msg_id)::text AS hi,
	extract(epoch FROM ` + clock + ` - (array_agg(enqueued_at ORDER BY msg_id))[1])::float8::text AS age,
	(count(*) FILTER (WHERE vt > ` + clock + `))::text AS invisible,
	(count(*) FILTER (WHERE vt <= ` + clock + `))::text AS visible, 'true' AS visible_counted
FROM ` + queueTable(rel)
}

// Columns of idSampleSQL.
const (
	colHits         = "hits"
	colVisibleHits  = "visible_hits"
	colTotal        = "total"
	colVisibleTotal = "visible_total"
)

// idSampleSQL looks up message ids in the queue table by primary key (or
// the msg_id index of a partitioned queue): the span from $1 is cut into
// $2 strata with integer bounds, lo+floor(g*$3) to lo+floor((g+1)*$3), and
// one id is drawn at random in each (with $3 = 1 and $2 the span, every id
// once). It returns how many ids exist and how many of those are visible,
// and the same weighted by their stratum's width: the weighted sums
// estimate the depth and the visible messages without bias. Its cost is
// $2 index lookups whatever the queue's size.
func idSampleSQL(rel string) string {
	return `WITH k AS MATERIALIZED (SELECT pg_catalog.clock_timestamp() AS t),
s AS MATERIALIZED (
	SELECT a + floor(random() * (b - a))::bigint AS id, b - a AS w
	FROM (SELECT $1::bigint + floor(g * $3::float8)::bigint AS a, $1::bigint + floor((g + 1) * $3::float8)::bigint AS b
		FROM generate_series(0, $2::bigint - 1) AS g) AS st
	WHERE b > a
)
SELECT count(*)::text AS hits, (count(*) FILTER (WHERE t.vt <= ` + clock + `))::text AS visible_hits,
	coalesce(sum(s.w), 0)::text AS total, coalesce(sum(s.w) FILTER (WHERE t.vt <= ` + clock + `), 0)::text AS visible_total
FROM ` + queueTable(rel) + ` AS t
JOIN s ON s.id = t.msg_id
WHERE t.msg_id = ANY (ARRAY(SELECT id FROM s))`
}
