package pgmqtest

import (
	"context"
	"testing"
	"time"
)

// RemoveHeaderSupport makes the database look like PGMQ before 1.5, whose
// send and send_batch take no headers: it drops every form with a headers
// argument and gives send(name, msg, delay) and send_batch(name, msgs,
// delay) bodies that insert directly (PGMQ 1.5's call the dropped forms).
// The message tables keep their headers column.
func (db *DB) RemoveHeaderSupport(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const sql = `DO $$
DECLARE f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'pgmq' AND p.proname IN ('send', 'send_batch') AND p.pronargs >= 3
		  AND p.proargtypes[2] IN ('jsonb'::regtype, 'jsonb[]'::regtype)
	LOOP
		EXECUTE 'DROP FUNCTION ' || f || ' CASCADE';
	END LOOP;
END $$`
	// PGMQ 1.5's header-less forms call the dropped ones: replace them with
	// forms that insert directly, as releases before 1.5 did.
	const sendSQL = `CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('INSERT INTO pgmq.%I (vt, message) VALUES (clock_timestamp() + make_interval(secs => $2), $1) RETURNING msg_id', 'q_' || queue_name)
	USING msg, delay;
END $$`
	const batchSQL = `CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('INSERT INTO pgmq.%I (vt, message) SELECT clock_timestamp() + make_interval(secs => $2), m FROM unnest($1) AS m RETURNING msg_id', 'q_' || queue_name)
	USING msgs, delay;
END $$`
	for _, q := range []string{sql, sendSQL, batchSQL} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			tb.Fatalf("remove header support: %v", err)
		}
	}
}
