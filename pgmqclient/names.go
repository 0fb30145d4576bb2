package pgmqclient

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MaxQueueNameLength is PGMQ's limit: with the "q_"/"a_" prefixes and the
// "_msg_id_seq" suffix the longest derived identifier still fits
// PostgreSQL's 63-byte limit. For the names this package accepts (ASCII)
// characters and bytes are the same.
const MaxQueueNameLength = 47

// ValidateQueueName returns a *QueueNameError (matching ErrInvalidQueueName)
// unless PGMQ would accept name and this package can name its tables
// safely. Accepted: 1 to 47 ASCII characters without '$', ';', a single
// quote or "--" (PGMQ's own refusals) and without NUL (which PostgreSQL
// text cannot hold). So "nc-dash", "Orders", "a.b", "with space" and
// "1st" are valid queue names, as they are for PGMQ and other clients.
//
// Two refusals go beyond PGMQ's, for reasons the client cannot work
// around:
//   - The empty name: PGMQ would make a table "q_" for it, and an empty
//     queue in an error or a metric attribute reads as "no queue".
//   - Non-ASCII characters. PGMQ's 47-character limit counts characters,
//     while PostgreSQL cuts identifiers at 63 bytes: a 40-character name
//     in a two-byte script gives a truncated table name that another
//     queue can share. And PGMQ folds names with lower(), whose result for
//     non-ASCII letters depends on the database's ctype (ICU or libc
//     locale), so the client could not say which table a name means.
//     Queues with such names made by other clients are still sampled
//     (SampleDepths reads the tables from the catalog).
//
// Names reach SQL only as bind parameters or as identifiers that the
// server folded itself and the client quotes (see QueueSize).
func ValidateQueueName(name string) error {
	if name == "" {
		return &QueueNameError{Name: name, Reason: "empty"}
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		switch {
		case b >= 0x80:
			return &QueueNameError{Name: name, Reason: fmt.Sprintf("non-ASCII byte at %d: PostgreSQL's lower() and its 63-byte identifier limit make non-ASCII names ambiguous", i)}
		case b == 0:
			return &QueueNameError{Name: name, Reason: fmt.Sprintf("character '\\x00' at byte %d is not allowed (PostgreSQL text cannot hold it)", i)}
		case b == '$' || b == ';' || b == '\'':
			return &QueueNameError{Name: name, Reason: fmt.Sprintf("character %q at byte %d is not allowed (PGMQ refuses $, ; and ')", b, i)}
		case b == '-' && i+1 < len(name) && name[i+1] == '-':
			return &QueueNameError{Name: name, Reason: fmt.Sprintf("\"--\" at byte %d is not allowed (PGMQ refuses it)", i)}
		}
	}
	if len(name) > MaxQueueNameLength {
		return &QueueNameError{Name: name, Reason: fmt.Sprintf("longer than %d characters (%d)", MaxQueueNameLength, len(name))}
	}
	return nil
}

// queueRelSQL asks the server for the name of the queue's message table:
// PGMQ's own rule, lower('q_' || name), evaluated by the server under the
// database's ctype, then looked up. The first column says whether the
// schema pgmq exists at all; the second is NULL when the table does not.
const queueRelSQL = `SELECT to_regnamespace('pgmq') IS NOT NULL,
	(SELECT c.relname::text FROM pg_catalog.pg_class AS c
	 WHERE c.oid = to_regclass(format('pgmq.%I', lower('q_' || $1::text))))`

// queueTable returns the quoted name of the queue's message table as it
// exists in the database, "pgmq"."q_<name folded by the server>". A
// missing table gives ErrQueueNotFound, a missing schema
// ErrPGMQNotInstalled; name must be valid.
func queueTable(ctx context.Context, db DB, name string) (string, error) {
	var hasSchema bool
	var rel *string
	if err := db.QueryRow(ctx, queueRelSQL, name).Scan(&hasSchema, &rel); err != nil {
		return "", err
	}
	switch {
	case !hasSchema:
		return "", notInstalled(db, nil)
	case rel == nil:
		return "", ErrQueueNotFound
	}
	return quoteTable(*rel), nil
}

// quoteTable quotes a relation of the schema pgmq. rel comes from the
// server's catalog, never from the caller.
func quoteTable(rel string) string {
	return pgx.Identifier{"pgmq", rel}.Sanitize()
}
