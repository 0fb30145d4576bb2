package pgmqclient

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// All SQL of the depth sampler lives in this file. Statements that read
// only catalogs have fixed text; statements that read a queue's table are
// built by depthTable and the builders below from the table name the
// server reported (never from a queue name as given), quoted as an
// identifier. Every result column is text, so that the pipelined and the
// sequential runner decode the same way.
//
// None of these statements is kept prepared on the server: the runner
// sends them as unnamed statements, so the sampler's session holds no plan
// per queue and its memory does not grow as queues come and go.

// depthDiscoverSQL lists the queues (pgmq.meta joined to the catalog) with
// their table's oid, its id sequence's oid (0 when missing) and whether an
// index leads with vt (looked up for partitioned queues only, which some
// PGMQ releases create without one; PGMQ indexes every plain queue table on
// vt), and in every row the server's clock (UTC) and whether it is a
// standby, then whether the table is unlogged. It reads catalogs only and
// takes no lock on any queue table, so its cost is one row per queue and it
// never waits on a locked queue. The table and the sequence are looked up by
// name through pg_class's (relname, relnamespace) index, one lookup per
// queue (LIMIT 1 keeps the planner from scanning pg_class, which holds
// several relations per queue). Queue names never reach SQL as text: $1 is a
// bind parameter.
const depthDiscoverSQL = `
SELECT m.queue_name, c.relname, c.oid::text, coalesce(s.oid, 0)::text,
	(c.relkind = 'r' OR EXISTS (
		SELECT 1 FROM pg_catalog.pg_index AS i
		JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'vt'
		WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum
	))::text,
	k.now, k.standby, (c.relpersistence = 'u')::text
FROM pgmq.meta AS m
CROSS JOIN (
	SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now, pg_catalog.pg_is_in_recovery()::text AS standby
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

// depthCatalogSQL reads what the server knows about a chunk of queue
// tables without reading the tables: one row per table and per partition
// (a partitioned queue's leaves are found through pg_inherits), with the
// planner's inputs (reltuples, relpages), the current size in pages, the
// statistics' live rows and whether a VACUUM or ANALYZE has re-based them
// since the statistics were last lost, and, in the queue's own row, its id
// sequence's last value (NULL on a standby, where it runs up to 32 ahead).
//
// $1 are the tables' oids and $2 their sequences' oids (0: none), in
// order; the first column is the position in those arrays (1-based). The
// text is fixed whatever the queues, and the number of locks it takes
// (pg_relation_size locks each table, pg_sequence_last_value each
// sequence) is bounded by the chunk size. pg_relation_size comes before
// pg_sequence_last_value in each row: table before sequence is the order
// DROP TABLE locks them in. A table dropped meanwhile has no row or a NULL
// size. pg_class is looked up by oid, one index lookup per table and one
// per sequence (LIMIT 1 keeps the planner from scanning it whole for every
// chunk: an EXISTS test of the sequence became a hashed subplan, a
// sequential scan of pg_class in every catalog statement).
const depthCatalogSQL = `
WITH RECURSIVE tree (i, rel, seq, root) AS (
	SELECT u.i, u.rel, u.seq, true
	FROM unnest($1::oid[], $2::oid[]) WITH ORDINALITY AS u (rel, seq, i)
	UNION ALL
	SELECT t.i, h.inhrelid, 0::oid, false
	FROM tree AS t JOIN pg_catalog.pg_inherits AS h ON h.inhparent = t.rel
)
SELECT t.i::text, t.root::text, (c.relkind = 'p')::text, c.reltuples::float8::text, c.relpages::text,
	CASE WHEN c.relkind = 'p' THEN 0
		ELSE pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint END::text,
	pg_catalog.pg_stat_get_live_tuples(c.oid)::text,
	(pg_catalog.pg_stat_get_last_vacuum_time(c.oid) IS NOT NULL
		OR pg_catalog.pg_stat_get_last_autovacuum_time(c.oid) IS NOT NULL
		OR pg_catalog.pg_stat_get_last_analyze_time(c.oid) IS NOT NULL
		OR pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL)::text,
	CASE WHEN s.oid IS NOT NULL AND NOT pg_catalog.pg_is_in_recovery()
		THEN coalesce(pg_catalog.pg_sequence_last_value(s.oid), 0) END::text
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

// localTimeoutsSQL sets lock_timeout ($1) and statement_timeout ($2) for
// the transaction in progress only: the sampler sends it at the start of
// each of its transactions, so that nothing is set on the session.
const localTimeoutsSQL = `SELECT set_config('lock_timeout', $1::text, true), set_config('statement_timeout', $2::text, true)`

// depthTable is the single identifier-quoting builder of this file: the
// queue table pgmq.<rel>, rel being the table name the catalog reported.
func depthTable(rel string) string {
	return pgx.Identifier{"pgmq", rel}.Sanitize()
}

// depthProbeSQL reads one queue table in one statement, through its
// indexes: the smallest and largest msg_id, the oldest message's age in
// seconds, a count of invisible rows (vt > now()) capped at $2 rows, and a
// count of visible rows capped at threshold+1, or not made (limit 0) when
// $3 is false, the invisible count did not pass the threshold $1, the id
// span is over twice the threshold, and the estimate $4 leaves more than
// the threshold visible beside the invisible count: the caller then knows
// from the statistics that the queue is far above the threshold, and the
// visible side is estimated. The last column says whether the visible
// count was made.
//
// With a vt index (vtIndex) the counts walk it (ORDER BY vt keeps the
// planner on the index); without one (partitioned queues of some PGMQ
// releases) they scan, so the caller passes limits of 0 for big queues.
func depthProbeSQL(rel string, vtIndex bool) string {
	t := depthTable(rel)
	order := ""
	if vtIndex {
		order = " ORDER BY vt"
	}
	return `SELECT lo.msg_id::text, hi.msg_id::text, extract(epoch FROM now() - lo.enqueued_at)::float8::text,
	inv.n::text, vis.n::text, (l.lim > 0)::text
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ` + t + ` ORDER BY msg_id LIMIT 1) AS lo ON true
LEFT JOIN LATERAL (SELECT msg_id FROM ` + t + ` ORDER BY msg_id DESC LIMIT 1) AS hi ON true
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + t + ` WHERE vt > now()` + order + ` LIMIT $2::bigint) AS s) AS inv
CROSS JOIN LATERAL (SELECT CASE WHEN $3::bool OR inv.n > $1::bigint OR hi.msg_id - lo.msg_id < 2 * ($1::bigint + 1)
		OR $4::bigint - inv.n <= $1::bigint
	THEN $1::bigint + 1 ELSE 0 END AS lim) AS l
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + t + ` WHERE vt <= now()` + order + ` LIMIT l.lim) AS s) AS vis`
}

// depthGroupSQL probes several queues above the threshold in one
// statement, one UNION ALL branch per queue, each returning its position
// in deep and depthProbeSQL's columns. Limits are literals (numbers the
// sampler computed); the visible count is made only in the branches of
// queues marked groupVis (those that needed it last time, capped at
// threshold+1): elsewhere the branch leaves it out (0, not made), which
// spares a quarter of the statement's cost, and the sampler probes such a
// queue again alone in the rare sample where it turns out to need it
// (see needsVisibleCount).
// The sampler keeps it prepared and caps its branches at
// maxPreparedProbes: it spares the planning and the round trip per deep
// queue, which is what makes a sample of deep queues far cheaper than a
// count, while its size and locks stay bounded.
func depthGroupSQL(deep []*depthQueue, threshold int64) string {
	var b strings.Builder
	cap := strconv.FormatInt(threshold+1, 10)
	for i, q := range deep {
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		tbl := depthTable(q.rel)
		order := ""
		if q.vtIndex {
			order = " ORDER BY vt"
		}
		vis := `'0', 'false'`
		if q.groupVis {
			vis = `vis.n::text, 'true'`
		}
		b.WriteString(`SELECT ` + strconv.Itoa(i) + `::text, lo.msg_id::text, hi.msg_id::text, extract(epoch FROM now() - lo.enqueued_at)::float8::text,
	inv.n::text, ` + vis + `
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ` + tbl + ` ORDER BY msg_id LIMIT 1) AS lo ON true
LEFT JOIN LATERAL (SELECT msg_id FROM ` + tbl + ` ORDER BY msg_id DESC LIMIT 1) AS hi ON true
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + tbl + ` WHERE vt > now()` + order + ` LIMIT ` + strconv.FormatInt(q.invLimit, 10) + `) AS s) AS inv`)
		if q.groupVis {
			b.WriteString(`
CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM ` + tbl + ` WHERE vt <= now()` + order + ` LIMIT ` + cap + `) AS s) AS vis`)
		}
	}
	return b.String()
}

// depthScanSQL is depthProbeSQL for a table of a few pages: one scan
// counts every row, which costs less than planning the probe's four index
// lookups. Same columns; both counts are exact, uncapped.
func depthScanSQL(rel string) string {
	return `SELECT min(msg_id)::text, max(msg_id)::text,
	extract(epoch FROM now() - (array_agg(enqueued_at ORDER BY msg_id))[1])::float8::text,
	(count(*) FILTER (WHERE vt > now()))::text, (count(*) FILTER (WHERE vt <= now()))::text, 'true'
FROM ` + depthTable(rel)
}

// depthSampleSQL looks up message ids in the queue table by primary key
// (or the msg_id index of a partitioned queue): the span from $1 is cut
// into $2 strata with integer bounds, lo+floor(g*$3) to lo+floor((g+1)*$3),
// and one id is drawn at random in each (with $3 = 1 and $2 the span,
// every id once). It returns how many ids exist and how many of those are
// visible, and the same weighted by their stratum's width: the weighted
// sums estimate the depth and the visible messages without bias. Its cost
// is $2 index lookups whatever the queue's size.
func depthSampleSQL(rel string) string {
	return `WITH s AS MATERIALIZED (
	SELECT a + floor(random() * (b - a))::bigint AS id, b - a AS w
	FROM (SELECT $1::bigint + floor(g * $3::float8)::bigint AS a, $1::bigint + floor((g + 1) * $3::float8)::bigint AS b
		FROM generate_series(0, $2::bigint - 1) AS g) AS st
	WHERE b > a
)
SELECT count(*)::text, (count(*) FILTER (WHERE t.vt <= now()))::text,
	coalesce(sum(s.w), 0)::text, coalesce(sum(s.w) FILTER (WHERE t.vt <= now()), 0)::text
FROM ` + depthTable(rel) + ` AS t
JOIN s ON s.id = t.msg_id
WHERE t.msg_id = ANY (ARRAY(SELECT id FROM s))`
}
