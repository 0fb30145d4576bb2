package pgmqclient

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// MaxQueueNameLength is PGMQ's limit: with the "q_"/"a_" prefixes and the
// "_msg_id_seq" suffix the longest derived identifier still fits
// PostgreSQL's 63-byte limit.
const MaxQueueNameLength = 47

// ValidateQueueName returns a *QueueNameError (matching ErrInvalidQueueName)
// unless name is 1 to 47 ASCII letters, digits and underscores and does not
// start with a digit. This is stricter than PGMQ, which accepts nearly
// anything: names end up in identifiers, so only a conservative alphabet is
// let through.
func ValidateQueueName(name string) error {
	if name == "" {
		return &QueueNameError{Name: name, Reason: "empty"}
	}
	if len(name) > MaxQueueNameLength {
		return &QueueNameError{Name: name, Reason: fmt.Sprintf("longer than %d characters (%d bytes)", MaxQueueNameLength, len(name))}
	}
	for i, r := range name {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9':
			if i == 0 {
				return &QueueNameError{Name: name, Reason: "must start with a letter or underscore"}
			}
		default:
			return &QueueNameError{Name: name, Reason: fmt.Sprintf("character %q at byte %d is not allowed (only ASCII letters, digits and underscore)", r, i)}
		}
	}
	return nil
}

// queueTable returns the quoted name of the queue's message table,
// "pgmq"."q_<name in lower case>", as PGMQ names it.
func queueTable(name string) (string, error) { return pgmqTable("q_", name) }

func pgmqTable(prefix, name string) (string, error) {
	if err := ValidateQueueName(name); err != nil {
		return "", err
	}
	// Validated names are ASCII, so Go's and PostgreSQL's lower() agree.
	return pgx.Identifier{"pgmq", prefix + strings.ToLower(name)}.Sanitize(), nil
}
