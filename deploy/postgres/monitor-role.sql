-- pgmqotel: pgmqotel_sampler, the least-privileged role of the queue sampler.
--
-- What it may do: read every PGMQ queue's depth (plain, unlogged and
-- partitioned queues, and queues created later) and take part in the
-- sampler election. What it may not: write or delete a message, call a
-- PGMQ function that writes (they run with the caller's rights), create or
-- alter anything, read another schema's tables. It is NOLOGIN: grant it to
-- the login the sampler connects as,
--
--     GRANT pgmqotel_sampler TO app_monitor;  -- a role with INHERIT (the default)
--
-- Its SELECT covers every table in schema pgmq, archives included, since
-- default privileges cannot name tables; so it can read message bodies, as
-- PGMQ's own grant to pg_monitor can. It needs no pg_monitor: the depth
-- statistics it reads (pg_class, pg_stat_get_*, pg_relation_size) are
-- readable by every role.
--
-- Run it once per database, after PGMQ is installed and after
-- election-lease.sql, as the role that creates the queues (it must be able
-- to grant on them; pgmq.meta belongs to whoever installed PGMQ, so when
-- that was another role, such as a superuser for CREATE EXTENSION, run it
-- as a superuser and add FOR ROLE as below). Default privileges are per
-- creating role: the two
-- ALTER DEFAULT PRIVILEGES statements cover queues that the role running
-- this file creates later. If another role creates queues, add
-- FOR ROLE <creator> to them (a superuser may), and so for each creator;
-- pg_partman's partitions are read through their parent and need no grant.
-- Creating the role needs CREATEROLE; an administrator may create it
-- beforehand, and the file then leaves it as it is. The file is idempotent.
--
-- Applied and checked, grant by grant, by otelmetrics/least_privilege_test.go.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgmqotel_sampler') THEN
        CREATE ROLE pgmqotel_sampler NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
    -- Connecting, in case CONNECT was revoked from PUBLIC.
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO pgmqotel_sampler', current_database());
END
$$;

-- Queue depths: the queue list (pgmq.meta), each queue's table (counts and
-- the oldest message) and its id sequence (messages ever sent).
GRANT USAGE ON SCHEMA pgmq TO pgmqotel_sampler;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pgmqotel_sampler;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pgmqotel_sampler;

-- Queues created later by the role running this file.
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON TABLES TO pgmqotel_sampler;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON SEQUENCES TO pgmqotel_sampler;

-- The election lease: acquire (INSERT ... ON CONFLICT DO UPDATE, reading
-- the row back), renew (UPDATE), release (DELETE).
GRANT USAGE ON SCHEMA pgmqotel TO pgmqotel_sampler;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgmqotel.election_lease TO pgmqotel_sampler;
