// Package pgmqclient is a small client for PGMQ, the PostgreSQL message
// queue, built on pgx v5.
//
// A Client wraps anything that can run queries: a *pgxpool.Pool, a single
// *pgx.Conn or a pgx.Tx (see DB). Over a transaction every call joins the
// caller's transaction, so a send can commit or roll back together with the
// caller's own writes.
//
// # Compatibility
//
// The client works with PGMQ 1.5 through 1.13, installed as an extension or
// by the SQL-only script. Result rows are mapped by column name, never by
// position, because PGMQ's result types grew between releases
// (message_record gained last_read_at, metrics_result a trailing column):
// missing columns are left at their zero value and unknown ones are ignored.
// PGMQ functions are always called with every argument cast to its type, so
// overloads added in later releases cannot make a call ambiguous.
//
// Newer operations (FIFO groups, topics, insert notifications, the
// timestamp and array forms of send and set_vt, partitioned queues) depend
// on the release. The client reads once which pgmq functions exist, with
// their argument types (see Client.Capabilities), and an operation the
// server lacks fails before any SQL with an error matching ErrUnsupported
// that names the release that added it (*UnsupportedError).
//
// # Queue names
//
// Queue names are checked in Go before any SQL is sent (see
// ValidateQueueName): every name PGMQ accepts (at most 47 characters, none
// of '$', ';', a single quote or "--") is accepted, so "nc-dash",
// "Mixed-Case" or "orders.v2" work, except the empty name and names with
// non-ASCII characters, whose table PostgreSQL's locale-dependent lower()
// and 63-byte identifier limit make ambiguous. Names reach PGMQ's functions
// only as bind parameters; where the client itself counts a queue table
// (QueueSize) the server names the table and the client quotes it. As in
// PGMQ, names are case-insensitive: queue "Orders" is stored in table
// pgmq.q_orders.
//
// # Durations
//
// PGMQ counts visibility timeouts, delays and poll limits in whole seconds
// (poll intervals in milliseconds). The client rounds every duration UP to the
// next unit, so a message is never visible earlier, and a poll never ends
// sooner, than asked.
//
// # Errors
//
// Invalid input fails before any SQL with an error matching
// ErrInvalidQueueName or ErrInvalidArgument. Every error is an *OpError
// naming the operation and the queue and wrapping the cause (with %w, so
// errors.As finds the *pgconn.PgError). A queue that does not exist yields an
// error matching ErrQueueNotFound; a database without PGMQ one matching
// ErrPGMQNotInstalled, whose text names the database, user and server the
// client looked in and says how to install PGMQ.
// OpError.ErrorType classifies an error in a word for telemetry
// (error.type).
//
// # Tracing hooks
//
// New(db, WithTracer(t)) calls t around sends, receives and settles (see
// SendTracer and the optional SendBatchTracer, ReceiveTracer and
// SettleTracer). The hooks have no telemetry dependency; package otelpgmq
// implements them with OpenTelemetry. A send hook may add keys to the
// message's headers (the trace context): they are merged into the jsonb
// headers, the caller's keys winning and PGMQ's x-pgmq-* keys untouched.
// Before PGMQ 1.5 there are no headers: the client finds out once from the
// catalog, and then sends without them.
package pgmqclient
