-- A PGMQ-compatible schema for tests, written for this project from the
-- facts in the project's notes (not derived from PGMQ's own SQL). It offers
-- the tables, types and functions pgmqclient calls, with PGMQ's names,
-- argument names and result shapes (message_record with last_read_at,
-- metrics_result in its seven-column form), so that the real PGMQ script
-- is a drop-in replacement. Beyond PGMQ 1.5 it offers what the project's
-- tests of the newer operations need: send and set_vt with a timestamp,
-- set_vt over several ids, insert notifications, FIFO groups, topics and
-- partitioned queues (not convert_archive_partitioned, whose tests then
-- check the client's ErrUnsupported).

CREATE SCHEMA pgmq;

-- Says what this is to anyone who looks (\dn+ in psql, and the example
-- orchestrator, whose summary lines then read pgmq="compat schema (not
-- PGMQ)"). The comment must start with "pgmqotel compat schema".
COMMENT ON SCHEMA pgmq IS 'pgmqotel compat schema (not PGMQ): the tables and functions pgmqclient calls, with PGMQ''s names, for tests and demos';

CREATE TABLE pgmq.meta (
    queue_name     varchar     NOT NULL UNIQUE,
    is_partitioned boolean     NOT NULL,
    is_unlogged    boolean     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE pgmq.message_record AS (
    msg_id       bigint,
    read_ct      integer,
    enqueued_at  timestamptz,
    last_read_at timestamptz,
    vt           timestamptz,
    message      jsonb,
    headers      jsonb
);

CREATE TYPE pgmq.metrics_result AS (
    queue_name           text,
    queue_length         bigint,
    newest_msg_age_sec   integer,
    oldest_msg_age_sec   integer,
    total_messages       bigint,
    scrape_time          timestamptz,
    queue_visible_length bigint
);

CREATE TYPE pgmq.queue_record AS (
    queue_name     varchar,
    is_partitioned boolean,
    is_unlogged    boolean,
    created_at     timestamptz
);

-- Monitoring roles read depths without further grants.
GRANT USAGE ON SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON pgmq.meta TO pg_monitor;

-- Checks a queue name as PGMQ does and returns its table name:
-- prefix || '_' || the name in lower case (unquoted; callers use %I).
CREATE FUNCTION pgmq._compat_table(queue_name text, prefix text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF queue_name IS NULL THEN
        RAISE EXCEPTION 'queue name must not be null' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(queue_name) > 47 THEN
        RAISE EXCEPTION 'queue name % is longer than 47 characters', quote_literal(queue_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF strpos(queue_name, '$') > 0 OR strpos(queue_name, ';') > 0
       OR strpos(queue_name, '--') > 0 OR strpos(queue_name, '''') > 0 THEN
        RAISE EXCEPTION 'queue name % contains a forbidden character ($ ; -- or quote)', quote_literal(queue_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN prefix || '_' || lower(queue_name);
END
$fn$;

CREATE FUNCTION pgmq._compat_create(queue_name text, unlogged boolean)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    qtab text := pgmq._compat_table(queue_name, 'q');
    atab text := pgmq._compat_table(queue_name, 'a');
BEGIN
    EXECUTE format(
        'CREATE %s TABLE IF NOT EXISTS pgmq.%I (
            msg_id       bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
            read_ct      integer NOT NULL DEFAULT 0,
            enqueued_at  timestamptz NOT NULL DEFAULT now(),
            last_read_at timestamptz,
            vt           timestamptz NOT NULL,
            message      jsonb,
            headers      jsonb)',
        CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtab);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt)', qtab || '_vt_idx', qtab);
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id       bigint PRIMARY KEY,
            read_ct      integer NOT NULL DEFAULT 0,
            enqueued_at  timestamptz NOT NULL DEFAULT now(),
            last_read_at timestamptz,
            archived_at  timestamptz NOT NULL DEFAULT now(),
            vt           timestamptz NOT NULL,
            message      jsonb,
            headers      jsonb)',
        atab);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', atab || '_at_idx', atab);
    EXECUTE format('GRANT SELECT ON pgmq.%I, pgmq.%I TO pg_monitor', qtab, atab);
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO pg_monitor',
        pg_get_serial_sequence(format('pgmq.%I', qtab), 'msg_id'));
    -- One meta row per queue, whatever the case of the name it was created with.
    INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
    SELECT _compat_create.queue_name, false, unlogged
    WHERE NOT EXISTS (
        SELECT 1 FROM pgmq.meta AS m WHERE lower(m.queue_name) = lower(_compat_create.queue_name));
END
$fn$;

CREATE FUNCTION pgmq.create(queue_name text)
RETURNS void LANGUAGE sql AS $fn$
    SELECT pgmq._compat_create(queue_name, false);
$fn$;

CREATE FUNCTION pgmq.create_unlogged(queue_name text)
RETURNS void LANGUAGE sql AS $fn$
    SELECT pgmq._compat_create(queue_name, true);
$fn$;

CREATE FUNCTION pgmq.drop_queue(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    qtab text := pgmq._compat_table(queue_name, 'q');
    atab text := pgmq._compat_table(queue_name, 'a');
BEGIN
    IF to_regclass(format('pgmq.%I', qtab)) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I, pgmq.%I', qtab, atab);
    DELETE FROM pgmq.meta AS m WHERE lower(m.queue_name) = lower(drop_queue.queue_name);
    -- A partitioned queue leaves no pg_partman configuration behind.
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_partman') THEN
        EXECUTE format('DELETE FROM %I.part_config WHERE parent_table IN (%L, %L)',
            (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_partman'),
            'pgmq.' || qtab, 'pgmq.' || atab);
    END IF;
    RETURN true;
END
$fn$;

CREATE FUNCTION pgmq.purge_queue(queue_name text)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    removed bigint;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I', pgmq._compat_table(queue_name, 'q'));
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$fn$;

CREATE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record LANGUAGE sql STABLE AS $fn$
    SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at
    FROM pgmq.meta AS m ORDER BY m.queue_name;
$fn$;

-- Inserts msgs (with headers[i] for msgs[i]; headers may be NULL) visible
-- from vt on, returning the new ids in input order.
CREATE FUNCTION pgmq._compat_send(queue_name text, msgs jsonb[], headers jsonb[], vt timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
        RAISE EXCEPTION '% headers for % messages', cardinality(headers), cardinality(msgs)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers)
         SELECT $3, u.msg, $2[u.ord]
         FROM unnest($1) WITH ORDINALITY AS u(msg, ord)
         ORDER BY u.ord
         RETURNING msg_id',
        pgmq._compat_table(queue_name, 'q'))
    USING msgs, headers, coalesce(vt, clock_timestamp());
END
$fn$;

-- The moment a delay of some seconds ends.
CREATE FUNCTION pgmq._compat_after(delay integer)
RETURNS timestamptz LANGUAGE sql VOLATILE AS $fn$
    SELECT clock_timestamp() + make_interval(secs => coalesce(delay, 0));
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, ARRAY[msg], NULL, pgmq._compat_after(0));
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, ARRAY[msg], NULL, pgmq._compat_after(delay));
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, ARRAY[msg], NULL, delay);
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, ARRAY[msg], ARRAY[headers], pgmq._compat_after(0));
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, ARRAY[msg], ARRAY[headers], pgmq._compat_after(delay));
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, ARRAY[msg], ARRAY[headers], delay);
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, msgs, NULL, pgmq._compat_after(0));
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, msgs, NULL, pgmq._compat_after(delay));
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, msgs, NULL, delay);
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, msgs, headers, pgmq._compat_after(0));
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, msgs, headers, pgmq._compat_after(delay));
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq._compat_send(queue_name, msgs, headers, delay);
$fn$;

-- Takes up to qty visible messages in id order, skipping rows other
-- transactions hold, hides them for vt seconds and counts the read.
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH picked AS (
            SELECT msg_id FROM pgmq.%1$I
            WHERE vt <= clock_timestamp() AND ($2 = ''{}''::jsonb OR message @> $2)
            ORDER BY msg_id
            LIMIT $1
            FOR UPDATE SKIP LOCKED)
         UPDATE pgmq.%1$I AS t
         SET vt = clock_timestamp() + make_interval(secs => $3),
             read_ct = t.read_ct + 1,
             last_read_at = clock_timestamp()
         FROM picked
         WHERE t.msg_id = picked.msg_id
         RETURNING t.msg_id, t.read_ct, t.enqueued_at, t.last_read_at, t.vt, t.message, t.headers',
        pgmq._compat_table(queue_name, 'q'))
    USING qty, coalesce(conditional, '{}'::jsonb), vt;
END
$fn$;

-- read, retried every poll_interval_ms until something is read or
-- max_poll_seconds have passed. Each try sees a fresh snapshot.
CREATE FUNCTION pgmq.read_with_poll(
    queue_name text, vt integer, qty integer,
    max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100,
    conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
DECLARE
    give_up timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        RETURN QUERY SELECT * FROM pgmq.read(
            read_with_poll.queue_name, read_with_poll.vt, read_with_poll.qty, read_with_poll.conditional);
        IF FOUND OR clock_timestamp() >= give_up THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(least(poll_interval_ms / 1000.0,
            greatest(0, extract(epoch FROM give_up - clock_timestamp()))));
    END LOOP;
END
$fn$;

-- Reads and deletes up to qty visible messages at once.
CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH picked AS (
            SELECT msg_id FROM pgmq.%1$I
            WHERE vt <= clock_timestamp()
            ORDER BY msg_id
            LIMIT $1
            FOR UPDATE SKIP LOCKED)
         DELETE FROM pgmq.%1$I AS t
         USING picked
         WHERE t.msg_id = picked.msg_id
         RETURNING t.msg_id, t.read_ct, t.enqueued_at, t.last_read_at, t.vt, t.message, t.headers',
        pgmq._compat_table(queue_name, 'q'))
    USING qty;
END
$fn$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'DELETE FROM pgmq.%I WHERE msg_id = ANY ($1) RETURNING msg_id',
        pgmq._compat_table(queue_name, 'q'))
    USING msg_ids;
END
$fn$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
    SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id]));
$fn$;

-- Moves messages to the archive table in one statement.
CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH moved AS (
            DELETE FROM pgmq.%I WHERE msg_id = ANY ($1)
            RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
         INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
         SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM moved
         RETURNING msg_id',
        pgmq._compat_table(queue_name, 'q'), pgmq._compat_table(queue_name, 'a'))
    USING msg_ids;
END
$fn$;

CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
    SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id]));
$fn$;

-- Makes the messages visible from vt on and returns them as updated.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamptz)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'UPDATE pgmq.%I
         SET vt = $2
         WHERE msg_id = ANY ($1)
         RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers',
        pgmq._compat_table(queue_name, 'q'))
    USING msg_ids, vt;
END
$fn$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt integer)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq.set_vt(queue_name, msg_ids, pgmq._compat_after(vt));
$fn$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt timestamptz)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq.set_vt(queue_name, ARRAY[msg_id], vt);
$fn$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq.set_vt(queue_name, ARRAY[msg_id], pgmq._compat_after(vt));
$fn$;

-- One queue's figures; a full scan of its table, like PGMQ's.
CREATE FUNCTION pgmq.metrics(queue_name text)
RETURNS pgmq.metrics_result LANGUAGE plpgsql AS $fn$
DECLARE
    qtab text := pgmq._compat_table(queue_name, 'q');
    seq text := pg_get_serial_sequence(format('pgmq.%I', qtab), 'msg_id');
    ts timestamptz := clock_timestamp();
    result pgmq.metrics_result;
BEGIN
    EXECUTE format(
        'SELECT $1, count(*),
                floor(extract(epoch FROM $2 - max(enqueued_at)))::integer,
                floor(extract(epoch FROM $2 - min(enqueued_at)))::integer,
                (SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM %s AS s),
                $2, count(*) FILTER (WHERE vt <= $2)
         FROM pgmq.%I',
        seq, qtab)
    INTO result
    USING queue_name, ts;
    RETURN result;
END
$fn$;

CREATE FUNCTION pgmq.metrics_all()
RETURNS SETOF pgmq.metrics_result LANGUAGE plpgsql AS $fn$
DECLARE
    qname text;
BEGIN
    FOR qname IN SELECT m.queue_name FROM pgmq.meta AS m ORDER BY m.queue_name LOOP
        RETURN NEXT pgmq.metrics(qname);
    END LOOP;
END
$fn$;

-- Insert notifications. A queue with notifications on has a row here and
-- an insert trigger; the trigger raises one NOTIFY per inserting statement
-- on channel 'pgmq.q_<name in lower case>.INSERT', at most one per
-- throttle_interval_ms (0: every time).
CREATE UNLOGGED TABLE pgmq.notify_insert_throttle (
    queue_name           varchar NOT NULL UNIQUE
        REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    throttle_interval_ms integer NOT NULL DEFAULT 0,
    last_notified_at     timestamptz NOT NULL DEFAULT to_timestamp(0)
);

CREATE FUNCTION pgmq._compat_notify_insert()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE pgmq.notify_insert_throttle AS t
    SET last_notified_at = clock_timestamp()
    WHERE t.queue_name = TG_ARGV[0]
      AND clock_timestamp() >= t.last_notified_at + make_interval(secs => t.throttle_interval_ms / 1000.0);
    IF FOUND THEN
        PERFORM pg_notify('pgmq.' || TG_TABLE_NAME || '.INSERT', '');
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION pgmq.disable_notify_insert(queue_name text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS compat_notify_insert ON pgmq.%I',
        pgmq._compat_table(queue_name, 'q'));
    DELETE FROM pgmq.notify_insert_throttle AS t WHERE t.queue_name = disable_notify_insert.queue_name;
END
$fn$;

CREATE FUNCTION pgmq.enable_notify_insert(queue_name text, throttle_interval_ms integer DEFAULT 250)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    qtab text := pgmq._compat_table(queue_name, 'q');
BEGIN
    IF throttle_interval_ms IS NULL OR throttle_interval_ms < 0 THEN
        RAISE EXCEPTION 'throttle must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass(format('pgmq.%I', qtab)) IS NULL THEN
        RAISE EXCEPTION 'queue % does not exist', quote_literal(queue_name) USING ERRCODE = 'undefined_table';
    END IF;
    PERFORM pgmq.disable_notify_insert(queue_name);
    INSERT INTO pgmq.notify_insert_throttle (queue_name, throttle_interval_ms)
    VALUES (enable_notify_insert.queue_name, enable_notify_insert.throttle_interval_ms);
    EXECUTE format(
        'CREATE TRIGGER compat_notify_insert AFTER INSERT ON pgmq.%I
         FOR EACH STATEMENT EXECUTE FUNCTION pgmq._compat_notify_insert(%L)',
        qtab, queue_name);
END
$fn$;

-- FIFO groups: messages with the same headers->>'x-pgmq-group' (no header:
-- one default group) are handed out in id order. A group is open while
-- its oldest message is visible, i.e. no earlier message of the group is
-- in flight; a transaction-scoped advisory lock per group keeps two
-- readers from taking the same group at once. round_robin takes the first
-- message of every open group, then the second, ...; otherwise the batch
-- is filled group by group, the group with the oldest head first.
CREATE FUNCTION pgmq._compat_read_grouped(queue_name text, vt integer, qty integer, round_robin boolean)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH heads AS (
            SELECT coalesce(headers->>''x-pgmq-group'', '''') AS grp, min(msg_id) AS head
            FROM pgmq.%1$I GROUP BY 1),
         open_groups AS (
            SELECT h.grp, h.head FROM heads AS h JOIN pgmq.%1$I AS q ON q.msg_id = h.head
            WHERE q.vt <= clock_timestamp()
              AND pg_try_advisory_xact_lock(hashtext(%2$L || ''/'' || h.grp))),
         ranked AS (
            SELECT q.msg_id,
                   dense_rank() OVER (ORDER BY g.head) AS group_pos,
                   row_number() OVER (PARTITION BY g.grp ORDER BY q.msg_id) AS pos_in_group
            FROM open_groups AS g
            JOIN pgmq.%1$I AS q ON coalesce(q.headers->>''x-pgmq-group'', '''') = g.grp
            WHERE q.vt <= clock_timestamp()),
         chosen AS (
            SELECT r.msg_id, row_number() OVER (ORDER BY
                     CASE WHEN $3 THEN r.pos_in_group ELSE r.group_pos END,
                     CASE WHEN $3 THEN r.group_pos ELSE r.pos_in_group END) AS n
            FROM ranked AS r),
         locked AS (
            SELECT q.msg_id, c.n FROM pgmq.%1$I AS q JOIN chosen AS c ON c.msg_id = q.msg_id
            WHERE c.n <= $1
            FOR UPDATE OF q SKIP LOCKED),
         updated AS (
            UPDATE pgmq.%1$I AS t
            SET vt = clock_timestamp() + make_interval(secs => $2),
                read_ct = t.read_ct + 1,
                last_read_at = clock_timestamp()
            FROM locked AS l
            WHERE t.msg_id = l.msg_id
            RETURNING t.msg_id, t.read_ct, t.enqueued_at, t.last_read_at, t.vt, t.message, t.headers, l.n)
         SELECT u.msg_id, u.read_ct, u.enqueued_at, u.last_read_at, u.vt, u.message, u.headers
         FROM updated AS u ORDER BY u.n',
        pgmq._compat_table(queue_name, 'q'), lower(queue_name))
    USING qty, vt, round_robin;
END
$fn$;

CREATE FUNCTION pgmq._compat_read_grouped_poll(
    queue_name text, vt integer, qty integer, max_poll_seconds integer, poll_interval_ms integer, round_robin boolean)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $fn$
DECLARE
    give_up timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        RETURN QUERY SELECT * FROM pgmq._compat_read_grouped(queue_name, vt, qty, round_robin);
        IF FOUND OR clock_timestamp() >= give_up THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(least(poll_interval_ms / 1000.0,
            greatest(0, extract(epoch FROM give_up - clock_timestamp()))));
    END LOOP;
END
$fn$;

CREATE FUNCTION pgmq.read_grouped(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq._compat_read_grouped(queue_name, vt, qty, false);
$fn$;

CREATE FUNCTION pgmq.read_grouped_rr(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq._compat_read_grouped(queue_name, vt, qty, true);
$fn$;

CREATE FUNCTION pgmq.read_grouped_with_poll(
    queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq._compat_read_grouped_poll(queue_name, vt, qty, max_poll_seconds, poll_interval_ms, false);
$fn$;

CREATE FUNCTION pgmq.read_grouped_rr_with_poll(
    queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF pgmq.message_record LANGUAGE sql AS $fn$
    SELECT * FROM pgmq._compat_read_grouped_poll(queue_name, vt, qty, max_poll_seconds, poll_interval_ms, true);
$fn$;

-- An index on the group key, for the grouped reads.
CREATE FUNCTION pgmq.create_fifo_index(queue_name text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    qtab text := pgmq._compat_table(queue_name, 'q');
BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I ((headers->>''x-pgmq-group''), msg_id)',
        qtab || '_fifo_idx', qtab);
END
$fn$;

CREATE FUNCTION pgmq.create_fifo_indexes_all()
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    qname text;
BEGIN
    FOR qname IN SELECT m.queue_name FROM pgmq.meta AS m LOOP
        PERFORM pgmq.create_fifo_index(qname);
    END LOOP;
END
$fn$;

-- Topics: a message sent with a routing key (dot-separated words) goes to
-- every queue bound to a matching pattern, where '*' is one word and '#'
-- any number of characters. Keys and patterns are checked as the project's
-- notes describe PGMQ's rules; invalid ones raise.
CREATE FUNCTION pgmq.validate_routing_key(routing_key text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF routing_key IS NULL OR routing_key = '' OR length(routing_key) > 255
       OR routing_key !~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$' THEN
        RAISE EXCEPTION 'invalid routing key %', quote_nullable(routing_key)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END
$fn$;

CREATE FUNCTION pgmq.validate_topic_pattern(pattern text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF pattern IS NULL OR pattern = '' OR length(pattern) > 255
       OR pattern !~ '^[A-Za-z0-9_*#-]+(\.[A-Za-z0-9_*#-]+)*$'
       OR pattern ~ '[*#][*#]' THEN
        RAISE EXCEPTION 'invalid topic pattern %', quote_nullable(pattern)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END
$fn$;

CREATE TABLE pgmq.topic_bindings (
    pattern    text NOT NULL,
    queue_name varchar NOT NULL REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    -- The pattern as an anchored regular expression (dots escaped first).
    compiled_regex text GENERATED ALWAYS AS (
        '^' || replace(replace(replace(pattern, '.', '\.'), '*', '[^.]+'), '#', '.*') || '$') STORED,
    UNIQUE (pattern, queue_name)
);

CREATE FUNCTION pgmq.bind_topic(pattern text, queue_name text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_topic_pattern(pattern);
    IF NOT EXISTS (SELECT 1 FROM pgmq.meta AS m WHERE m.queue_name = bind_topic.queue_name) THEN
        RAISE EXCEPTION 'queue % does not exist', quote_literal(queue_name) USING ERRCODE = 'undefined_table';
    END IF;
    INSERT INTO pgmq.topic_bindings (pattern, queue_name)
    VALUES (bind_topic.pattern, bind_topic.queue_name)
    ON CONFLICT DO NOTHING;
END
$fn$;

CREATE FUNCTION pgmq.unbind_topic(pattern text, queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM pgmq.topic_bindings AS b
    WHERE b.pattern = unbind_topic.pattern AND b.queue_name = unbind_topic.queue_name;
    RETURN FOUND;
END
$fn$;

CREATE FUNCTION pgmq.test_routing(routing_key text)
RETURNS TABLE (pattern text, queue_name text, compiled_regex text) LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    PERFORM pgmq.validate_routing_key(routing_key);
    RETURN QUERY
        SELECT b.pattern, b.queue_name::text, b.compiled_regex FROM pgmq.topic_bindings AS b
        WHERE test_routing.routing_key ~ b.compiled_regex
        ORDER BY b.pattern, b.queue_name;
END
$fn$;

-- The queues a routing key reaches, each once.
CREATE FUNCTION pgmq._compat_topic_queues(routing_key text)
RETURNS SETOF text LANGUAGE sql STABLE AS $fn$
    SELECT DISTINCT b.queue_name::text FROM pgmq.topic_bindings AS b
    WHERE routing_key ~ b.compiled_regex ORDER BY 1;
$fn$;

CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, headers jsonb, delay integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    qname text;
    reached integer := 0;
BEGIN
    PERFORM pgmq.validate_routing_key(routing_key);
    FOR qname IN SELECT * FROM pgmq._compat_topic_queues(routing_key) LOOP
        PERFORM pgmq._compat_send(qname, ARRAY[msg], ARRAY[headers], pgmq._compat_after(delay));
        reached := reached + 1;
    END LOOP;
    RETURN reached;
END
$fn$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE plpgsql AS $fn$
DECLARE
    qname text;
BEGIN
    PERFORM pgmq.validate_routing_key(routing_key);
    FOR qname IN SELECT * FROM pgmq._compat_topic_queues(routing_key) LOOP
        RETURN QUERY SELECT qname, s.id FROM pgmq._compat_send(qname, msgs, headers, delay) AS s(id);
    END LOOP;
END
$fn$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $fn$
    SELECT * FROM pgmq.send_batch_topic(routing_key, msgs, headers, pgmq._compat_after(delay));
$fn$;

-- Partitioned queues, with pg_partman 4 or 5 (whichever is installed): the
-- queue table is partitioned by msg_id when the interval is a number of
-- messages, by enqueued_at otherwise; pg_partman keeps partitions ahead and
-- drops those past the retention. The archive is a plain table.
CREATE FUNCTION pgmq.create_partitioned(
    queue_name text, partition_interval text DEFAULT '10000', retention_interval text DEFAULT '100000')
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    qtab text := pgmq._compat_table(queue_name, 'q');
    partman text;
    major integer;
    col text := CASE WHEN partition_interval ~ '^[0-9]+$' THEN 'msg_id' ELSE 'enqueued_at' END;
BEGIN
    SELECT e.extnamespace::regnamespace::text, split_part(e.extversion, '.', 1)::integer
    INTO partman, major
    FROM pg_extension AS e WHERE e.extname = 'pg_partman';
    IF partman IS NULL THEN
        RAISE EXCEPTION 'pg_partman is not installed' USING ERRCODE = 'feature_not_supported';
    END IF;
    IF to_regclass(format('pgmq.%I', qtab)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE TABLE pgmq.%I (
            msg_id       bigint GENERATED BY DEFAULT AS IDENTITY,
            read_ct      integer NOT NULL DEFAULT 0,
            enqueued_at  timestamptz NOT NULL DEFAULT now(),
            last_read_at timestamptz,
            vt           timestamptz NOT NULL,
            message      jsonb,
            headers      jsonb) PARTITION BY RANGE (%I)',
        qtab, col);
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (vt)', qtab || '_vt_idx', qtab);
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (msg_id)', qtab || '_msg_id_idx', qtab);
    EXECUTE format(
        'SELECT %I.create_parent(p_parent_table := %L, p_control := %L, p_interval := %L, p_type := %L)',
        partman, 'pgmq.' || qtab, col, partition_interval, CASE WHEN major >= 5 THEN 'range' ELSE 'native' END);
    EXECUTE format(
        'UPDATE %I.part_config SET retention = %L, retention_keep_table = false WHERE parent_table = %L',
        partman, retention_interval, 'pgmq.' || qtab);
    -- The archive and the grants as for any queue; the meta row says partitioned.
    PERFORM pgmq._compat_create(queue_name, false);
    UPDATE pgmq.meta AS m SET is_partitioned = true
    WHERE lower(m.queue_name) = lower(create_partitioned.queue_name);
END
$fn$;
