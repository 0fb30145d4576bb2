-- pgmqotel: the queue sampler's election lease table, as a migration.
--
-- The sampler elects one replica to sample the queues through one row per
-- election in pgmqotel.election_lease. By default it runs this same SQL
-- itself at its first election when its role may (queuesampler.ElectionDDL).
-- Where schema changes go through migrations, run this file with them, once
-- per database, as a role that may create a schema, and set
-- queuesampler.Config.NoElectionDDL so that the sampler never runs DDL.
-- Run it again after upgrading pgmqotel: it is idempotent, and it brings a
-- table made by an earlier release up to date (until then a sampler with
-- NoElectionDDL reports no queue figures and counts the failure).
--
-- The table is UNLOGGED: a crash or a failover empties it and the replicas
-- elect again. Then grant the sampler's role access (monitor-role.sql here,
-- or queuesampler.ElectionGrantSQL).
--
-- Kept equal to queuesampler.ElectionDDL by a test (queuesampler/deploy_test.go).

CREATE SCHEMA IF NOT EXISTS pgmqotel;
CREATE UNLOGGED TABLE IF NOT EXISTS pgmqotel.election_lease (
	key        bigint PRIMARY KEY,
	leader_id  text NOT NULL,
	elected_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	healthy    boolean NOT NULL DEFAULT true
);
ALTER TABLE pgmqotel.election_lease ADD COLUMN IF NOT EXISTS healthy boolean NOT NULL DEFAULT true;
