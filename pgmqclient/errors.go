package pgmqclient

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrInvalidQueueName is matched (errors.Is) by every *QueueNameError.
var ErrInvalidQueueName = errors.New("pgmqclient: invalid queue name")

// ErrInvalidArgument marks an argument other than the queue name that was
// refused before any SQL was sent (quantity below 1, negative duration,
// invalid JSON, empty id list, ...).
var ErrInvalidArgument = errors.New("pgmqclient: invalid argument")

// ErrQueueNotFound is wrapped by errors for queues that do not exist.
var ErrQueueNotFound = errors.New("pgmqclient: queue not found")

// ErrPGMQNotInstalled is wrapped by errors from a database without PGMQ
// (no schema pgmq, no pgmq.meta) or whose PGMQ lacks a function the
// client calls. The error's text names the database, the user and the
// server, as the DB's configuration gives them (`database "orders" (user
// "app") on 10.0.0.5:5432`; "this database" when the DB's type does not
// tell), and says how to install PGMQ.
var ErrPGMQNotInstalled = errors.New("pgmqclient: PGMQ is not installed in this database")

// InstallHint says how to put PGMQ into a database; errors matching
// ErrPGMQNotInstalled end with it.
const InstallHint = "install it with CREATE EXTENSION pgmq (where the extension is available) " +
	"or by running PGMQ's SQL install file (pgmq.sql from a PGMQ release) with psql -f; " +
	"scripts/stack.sh -pgmq-sql FILE does the latter"

// ErrMessageNotFound is wrapped by SetVisibilityTimeout and SetVisibleAt
// when the message is not in the queue (never sent, deleted, archived or
// popped).
var ErrMessageNotFound = errors.New("pgmqclient: message not found")

// QueueNameError reports why a queue name was refused.
type QueueNameError struct {
	Name   string
	Reason string
}

// Error quotes the name, since a refused name may hold anything.
func (e *QueueNameError) Error() string {
	return fmt.Sprintf("pgmqclient: invalid queue name %q: %s", e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidQueueName) true.
func (e *QueueNameError) Is(target error) bool { return target == ErrInvalidQueueName }

// OpError is the error every Client method returns: the operation, the
// queue (empty for calls about all queues) and the cause.
type OpError struct {
	Op    string
	Queue string
	Err   error
}

// Error reads "pgmqclient: <op> queue "<queue>": <cause>".
func (e *OpError) Error() string {
	// The causes made in this package carry the same prefix; say it once.
	cause := "<nil>"
	if e.Err != nil {
		cause = strings.TrimPrefix(e.Err.Error(), "pgmqclient: ")
	}
	if e.Queue == "" {
		return fmt.Sprintf("pgmqclient: %s: %s", e.Op, cause)
	}
	return fmt.Sprintf("pgmqclient: %s queue %q: %s", e.Op, e.Queue, cause)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// ErrorType classifies the error in a few stable, low-cardinality words,
// for the error.type attribute of telemetry (OpenTelemetry's
// semconv.ErrorType calls this method): "invalid_queue_name",
// "invalid_argument", "queue_not_found", "message_not_found",
// "pgmq_not_installed", "unsupported", "canceled", "timeout", a PostgreSQL SQLSTATE (such as "40001"), or
// "_OTHER".
func (e *OpError) ErrorType() string {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(e.Err, ErrInvalidQueueName):
		return "invalid_queue_name"
	case errors.Is(e.Err, ErrInvalidArgument):
		return "invalid_argument"
	case errors.Is(e.Err, ErrQueueNotFound):
		return "queue_not_found"
	case errors.Is(e.Err, ErrMessageNotFound):
		return "message_not_found"
	case errors.Is(e.Err, ErrPGMQNotInstalled):
		return "pgmq_not_installed"
	case errors.Is(e.Err, ErrUnsupported):
		return "unsupported"
	case errors.Is(e.Err, context.Canceled):
		return "canceled"
	case errors.Is(e.Err, context.DeadlineExceeded) || pgconn.Timeout(e.Err):
		return "timeout"
	case errors.As(e.Err, &pgErr) && pgErr.Code != "":
		return pgErr.Code
	}
	return "_OTHER"
}

// opErr wraps err for op and queue. A missing PGMQ (schema pgmq, one of
// its tables or functions) matches ErrPGMQNotInstalled and names the
// database of db; otherwise, for a named queue, a missing table (SQLSTATE
// 42P01, undefined_table) matches ErrQueueNotFound.
func opErr(db DB, op, queue string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case missingPGMQ(err) && !errors.Is(err, ErrPGMQNotInstalled):
		err = notInstalled(db, err)
	case queue != "" && errors.As(err, &pgErr) && pgErr.Code == "42P01":
		err = fmt.Errorf("%w: %w", ErrQueueNotFound, err)
	}
	return &OpError{Op: op, Queue: queue, Err: err}
}

// missingPGMQ reports whether err is the server saying that PGMQ's
// schema, its meta table or one of its functions does not exist. A
// missing queue table (pgmq.q_x) is not one: that is a missing queue.
func missingPGMQ(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "3F000": // invalid_schema_name: schema "pgmq" does not exist
		return strings.Contains(pgErr.Message, `"pgmq"`)
	case "42P01": // undefined_table
		return strings.Contains(pgErr.Message, `"pgmq.meta"`)
	case "42883": // undefined_function: function pgmq.x(...) does not exist
		return strings.Contains(pgErr.Message, "function pgmq.")
	}
	return false
}

// notInstalledError is ErrPGMQNotInstalled for one database: its text
// names the database, the user and the server (where db's configuration
// tells them), so that a program connected somewhere it did not mean to
// (an empty connection string reaches the local socket as the OS user)
// says where it looked.
type notInstalledError struct {
	where string // `database "x" (user "y") on host:port`, or "this database"
	cause error  // the server's error; nil when the client found no schema itself
}

func (e *notInstalledError) Error() string {
	cause := "no schema pgmq"
	if e.cause != nil {
		cause = e.cause.Error()
	}
	return fmt.Sprintf("pgmqclient: PGMQ is not installed in %s (%s); %s", e.where, cause, InstallHint)
}

// Unwrap makes errors.Is(err, ErrPGMQNotInstalled) true and keeps the
// server's error reachable (errors.As to *pgconn.PgError).
func (e *notInstalledError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrPGMQNotInstalled}
	}
	return []error{ErrPGMQNotInstalled, e.cause}
}

// notInstalled wraps cause (which may be nil) as ErrPGMQNotInstalled in
// the database of db, with the install hint.
func notInstalled(db DB, cause error) error {
	return &notInstalledError{where: describeDB(db), cause: cause}
}

// invalidArg is a refused argument, wrapped for op and queue.
func invalidArg(op, queue, format string, args ...any) error {
	return &OpError{Op: op, Queue: queue, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)}
}

// NotInstalled returns err wrapped to match ErrPGMQNotInstalled, naming
// the database of db (as a Client's errors do) and with the install hint,
// when it is the server saying that PGMQ's schema, its meta table or one
// of its functions does not exist; any other err unchanged. Packages that
// run their own SQL against PGMQ's catalog (queuedepth) use it to report a
// missing PGMQ as the client does. db may be nil: the text then says
// "this database".
func NotInstalled(db DB, err error) error {
	if missingPGMQ(err) && !errors.Is(err, ErrPGMQNotInstalled) {
		return notInstalled(db, err)
	}
	return err
}
