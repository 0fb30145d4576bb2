package queuesampler

import "github.com/pgmqotel/pgmqotel/queuesampler/internal/election"

// ElectionDDL creates the table of the sampler election,
// pgmqotel.election_lease (an UNLOGGED table of one row per election key:
// a crash or failover empties it and the replicas elect again), or brings
// one made by an earlier release up to date; it is idempotent. The sampler
// runs it at its first election when its role may create a schema, unless
// Config.NoElectionDDL is set; otherwise run it in a migration
// (deploy/postgres/election-lease.sql holds the same SQL) and grant the
// sampler's role access with ElectionGrantSQL or
// deploy/postgres/monitor-role.sql. Until then the sampler reports no
// queue figures and counts the refusal.
const ElectionDDL = election.PostgresDDL

// ElectionGrantSQL returns the statements that let role take part in the
// sampler election when another role created its table.
func ElectionGrantSQL(role string) string { return election.PostgresGrantSQL(role) }
