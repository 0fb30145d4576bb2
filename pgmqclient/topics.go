package pgmqclient

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Topics (PGMQ 1.11.0 on): a queue is bound to patterns, and a message sent
// with a routing key goes to every queue bound to a pattern that matches it.
// Routing keys are words separated by dots ("orders.eu.created"); in a
// pattern "*" stands for exactly one word and "#" for any number of words
// ("orders.#", "*.eu.*", "#" alone matches every key). Both are checked in
// Go, with PGMQ's rules, before any SQL is sent.

// MaxTopicLength is PGMQ's limit on routing keys and patterns, in characters.
const MaxTopicLength = 255

// TopicError reports a routing key or pattern refused before any SQL. It
// matches ErrInvalidArgument.
type TopicError struct {
	// Kind is "routing key" or "topic pattern".
	Kind   string
	Value  string
	Reason string
}

// Error quotes the value, since a refused one may hold anything.
func (e *TopicError) Error() string {
	return fmt.Sprintf("pgmqclient: invalid %s %q: %s", e.Kind, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *TopicError) Is(target error) bool { return target == ErrInvalidArgument }

// ValidateRoutingKey returns a *TopicError unless key is what PGMQ's
// validate_routing_key accepts: 1 to 255 ASCII letters, digits, '.', '_'
// and '-', not starting or ending with a dot, without two dots in a row.
func ValidateRoutingKey(key string) error {
	return validateTopic("routing key", key, func(r rune) bool { return false })
}

// ValidateTopicPattern returns a *TopicError unless pattern is what PGMQ's
// validate_topic_pattern accepts: the routing-key rules, plus the
// wildcards '*' and '#', never two wildcards side by side ("**", "##",
// "*#", "#*").
func ValidateTopicPattern(pattern string) error {
	err := validateTopic("topic pattern", pattern, func(r rune) bool { return r == '*' || r == '#' })
	if err != nil {
		return err
	}
	for _, pair := range []string{"**", "##", "*#", "#*"} {
		if strings.Contains(pattern, pair) {
			return &TopicError{"topic pattern", pattern, fmt.Sprintf("wildcards side by side (%q); separate them with dots", pair)}
		}
	}
	return nil
}

func validateTopic(kind, s string, extra func(rune) bool) error {
	switch {
	case s == "":
		return &TopicError{kind, s, "empty"}
	case len(s) > MaxTopicLength:
		return &TopicError{kind, s, fmt.Sprintf("longer than %d characters", MaxTopicLength)}
	}
	for i, r := range s {
		ok := r == '.' || r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || extra(r)
		if !ok {
			return &TopicError{kind, s, fmt.Sprintf("character %q at byte %d is not allowed", r, i)}
		}
	}
	switch {
	case s[0] == '.':
		return &TopicError{kind, s, "starts with a dot"}
	case s[len(s)-1] == '.':
		return &TopicError{kind, s, "ends with a dot"}
	case strings.Contains(s, ".."):
		return &TopicError{kind, s, "two dots in a row"}
	}
	return nil
}

// TopicMatches reports whether routingKey matches pattern the way PGMQ
// routes: the pattern becomes an anchored regular expression in which "*"
// matches one or more characters other than a dot and "#" any characters
// (so "orders.#" matches "orders.eu" and "orders.eu.created" but not
// "orders", and "#" matches everything). Both must be valid.
func TopicMatches(pattern, routingKey string) (bool, error) {
	if err := ValidateTopicPattern(pattern); err != nil {
		return false, err
	}
	if err := ValidateRoutingKey(routingKey); err != nil {
		return false, err
	}
	expr := regexp.QuoteMeta(pattern)
	expr = strings.ReplaceAll(expr, `\*`, `[^.]+`)
	expr = strings.ReplaceAll(expr, `#`, `.*`)
	return regexp.MustCompile(`^` + expr + `$`).MatchString(routingKey), nil
}

// TopicBinding is one binding of a pattern to a queue.
type TopicBinding struct {
	Pattern string
	Queue   string
}

// TopicSend is one message that SendBatchTopic put in a queue.
type TopicSend struct {
	Queue string
	ID    int64
}

// BindTopic makes messages sent with a routing key matching pattern go to
// queue too (pgmq.bind_topic). Binding twice is not an error. PGMQ looks
// the queue up by the name it was created with, case included.
func (c *Client) BindTopic(ctx context.Context, pattern, queue string) error {
	const op = "bind topic"
	if err := ValidateQueueName(queue); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := ValidateTopicPattern(pattern); err != nil {
		return &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, FeatureTopics); err != nil {
		return err
	}
	if _, err := c.db.Exec(ctx, `SELECT pgmq.bind_topic($1::text, $2::text)`, pattern, queue); err != nil {
		return opErr(c.db, op, queue, err)
	}
	return nil
}

// UnbindTopic removes the binding (pgmq.unbind_topic) and reports whether
// there was one.
func (c *Client) UnbindTopic(ctx context.Context, pattern, queue string) (bool, error) {
	const op = "unbind topic"
	if err := ValidateQueueName(queue); err != nil {
		return false, &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := ValidateTopicPattern(pattern); err != nil {
		return false, &OpError{Op: op, Queue: queue, Err: err}
	}
	if err := c.require(ctx, op, queue, FeatureTopics); err != nil {
		return false, err
	}
	var removed bool
	if err := c.db.QueryRow(ctx, `SELECT pgmq.unbind_topic($1::text, $2::text)`, pattern, queue).Scan(&removed); err != nil {
		return false, opErr(c.db, op, queue, err)
	}
	return removed, nil
}

// SendTopic sends the message to every queue bound to a pattern matching
// routingKey (pgmq.send_topic) and returns how many queues got it (0 when
// none matched: the message went nowhere). Options: WithHeaders, WithDelay,
// WithGroup; PGMQ's send_topic takes its delay in seconds only, so
// WithDelayUntil is refused with ErrInvalidArgument.
func (c *Client) SendTopic(ctx context.Context, routingKey string, payload json.RawMessage, opts ...SendOption) (int, error) {
	const op = "send topic"
	o, delay, err := sendArgs(opts)
	switch {
	case err != nil:
	case o.perMessage:
		err = fmt.Errorf("%w: WithBatchHeaders is for SendBatchTopic", ErrInvalidArgument)
	case !o.until.IsZero():
		err = fmt.Errorf("%w: send_topic takes its delay in seconds: use WithDelay", ErrInvalidArgument)
	case !json.Valid(payload):
		err = fmt.Errorf("%w: payload is not valid JSON", ErrInvalidArgument)
	default:
		err = ValidateRoutingKey(routingKey)
	}
	if err != nil {
		return 0, &OpError{Op: op, Err: err}
	}
	if err := c.require(ctx, op, "", FeatureTopics); err != nil {
		return 0, err
	}
	var n int32
	err = c.db.QueryRow(ctx, `SELECT pgmq.send_topic($1::text, $2::jsonb, $3::jsonb, $4::integer)`,
		routingKey, payload, o.headers, delay).Scan(&n)
	if err != nil {
		return 0, opErr(c.db, op, "", fmt.Errorf("routing key %q: %w", routingKey, err))
	}
	return int(n), nil
}

// SendBatchTopic sends the messages to every queue bound to a pattern
// matching routingKey (pgmq.send_batch_topic) and returns what went where,
// ordered by queue and id (empty when none matched). Options as SendBatch.
func (c *Client) SendBatchTopic(ctx context.Context, routingKey string, payloads []json.RawMessage, opts ...SendOption) ([]TopicSend, error) {
	const op = "send batch topic"
	o, delay, err := sendArgs(opts)
	if err == nil {
		err = ValidateRoutingKey(routingKey)
	}
	if err == nil && len(payloads) == 0 {
		err = fmt.Errorf("%w: no payloads", ErrInvalidArgument)
	}
	for i, p := range payloads {
		if err == nil && !json.Valid(p) {
			err = fmt.Errorf("%w: payload %d is not valid JSON", ErrInvalidArgument, i)
		}
	}
	headers := o.batchHeaders
	switch {
	case err != nil:
	case o.perMessage && len(headers) != len(payloads):
		err = fmt.Errorf("%w: %d headers for %d payloads", ErrInvalidArgument, len(headers), len(payloads))
	case o.headers != nil:
		headers = make([]json.RawMessage, len(payloads))
		for i := range headers {
			headers[i] = o.headers
		}
	}
	if err != nil {
		return nil, &OpError{Op: op, Err: err}
	}
	if err := c.require(ctx, op, "", FeatureTopics); err != nil {
		return nil, err
	}
	delayArg, delayType, err := c.delayParam(ctx, op, "", o, delay)
	if err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.send_batch_topic($1::text, $2::jsonb[], $3::jsonb[], $4::`+delayType+`)`,
		routingKey, payloads, headers, delayArg)
	if err != nil {
		return nil, opErr(c.db, op, "", fmt.Errorf("routing key %q: %w", routingKey, err))
	}
	var out []TopicSend
	err = scanByName(rows, func(column string, s *TopicSend) any {
		switch column {
		case "queue_name":
			return &s.Queue
		case "msg_id":
			return &s.ID
		}
		return nil
	}, func(s TopicSend) { out = append(out, s) }, "queue_name", "msg_id")
	if err != nil {
		return nil, opErr(c.db, op, "", fmt.Errorf("routing key %q: %w", routingKey, err))
	}
	slices.SortFunc(out, func(a, b TopicSend) int {
		return cmp.Or(cmp.Compare(a.Queue, b.Queue), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// TestRouting returns the bindings whose pattern matches routingKey
// (pgmq.test_routing), without sending anything, ordered by pattern and
// queue.
func (c *Client) TestRouting(ctx context.Context, routingKey string) ([]TopicBinding, error) {
	const op = "test routing"
	if err := ValidateRoutingKey(routingKey); err != nil {
		return nil, &OpError{Op: op, Err: err}
	}
	if err := c.require(ctx, op, "", FeatureTopics); err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, `SELECT * FROM pgmq.test_routing($1::text)`, routingKey)
	if err != nil {
		return nil, opErr(c.db, op, "", fmt.Errorf("routing key %q: %w", routingKey, err))
	}
	var out []TopicBinding
	err = scanByName(rows, func(column string, b *TopicBinding) any {
		switch column {
		case "pattern":
			return &b.Pattern
		case "queue_name":
			return &b.Queue
		}
		return nil
	}, func(b TopicBinding) { out = append(out, b) }, "pattern", "queue_name")
	if err != nil {
		return nil, opErr(c.db, op, "", fmt.Errorf("routing key %q: %w", routingKey, err))
	}
	slices.SortFunc(out, func(a, b TopicBinding) int {
		return cmp.Or(cmp.Compare(a.Pattern, b.Pattern), cmp.Compare(a.Queue, b.Queue))
	})
	return out, nil
}
