// Package queuedepth samples the depth of PGMQ queues from PostgreSQL at a
// cost bounded per queue, however deep the queues are: exact up to a
// threshold, estimated above it from what the server knows, and never
// made up.
//
// A sample runs in four stages, one file each:
//
//	discover.go  the queues, from pgmq.meta and the catalog (no lock on a queue table)
//	catalog.go   per chunk of queues: statistics, planner inputs, sizes, id sequences
//	probe.go     per queue: smallest and largest id, capped counts through the vt
//	             index; an id sample where no estimate can be trusted
//	estimate.go  the arithmetic that turns those figures into a depth
//
// sql.go holds every statement beside the columns it returns, rows.go
// reads rows by those column names, and exec.go runs the statements: each
// fails alone (a locked or dropped table costs only its queue), with
// lock_timeout and statement_timeout set locally in each transaction, on a
// direct connection or behind a pooler in transaction mode, in the
// extended or the simple query protocol.
//
// Messages are placed by their vt against the clock at the moment a
// statement reads the table (after its snapshot was taken), not against
// the start of its transaction: PGMQ stamps vt with clock_timestamp() at
// send, so a message committed while a sample runs is visible as soon as
// its vt has passed.
//
// The sampler needs SELECT on PGMQ's tables and sequences (PGMQ grants it
// to pg_monitor). It writes nothing. Package queuesampler runs it on a
// connection of its own, once across replicas, for the instruments of
// package otelmetrics.
package queuedepth
