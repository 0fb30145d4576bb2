package pgmqclient_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

func TestValidateQueueNameAccepts(t *testing.T) {
	for _, name := range []string{
		"a", "_", "orders", "Orders", "ORDERS_2", "_private", "q1_2_3",
		strings.Repeat("x", pgmqclient.MaxQueueNameLength),
	} {
		if err := pgmqclient.ValidateQueueName(name); err != nil {
			t.Errorf("ValidateQueueName(%q) = %v, want nil", name, err)
		}
	}
}

func TestValidateQueueNameRefuses(t *testing.T) {
	for _, tc := range []struct{ name, reason string }{
		{"", "empty"},
		{strings.Repeat("x", pgmqclient.MaxQueueNameLength+1), "longer than 47"},
		{"a;drop table x", "';'"},
		{"x'--", `'\''`},
		{"$1", "'$'"},
		{"名前", "'名'"},
		{"with space", "' '"},
		{" lead", "' '"},
		{"trail\n", `'\n'`},
		{"1abc", "start with a letter"},
		{"a-b", "'-'"},
		{"a.b", "'.'"},
		{`a"b`, `'"'`},
		{"a\x00b", `'\x00'`},
		{"café", "'é'"},
	} {
		err := pgmqclient.ValidateQueueName(tc.name)
		if !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
			t.Errorf("ValidateQueueName(%q) = %v, want ErrInvalidQueueName", tc.name, err)
			continue
		}
		var qe *pgmqclient.QueueNameError
		if !errors.As(err, &qe) || qe.Name != tc.name {
			t.Errorf("ValidateQueueName(%q): want *QueueNameError naming it, got %#v", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ValidateQueueName(%q) = %q, want it to mention %s", tc.name, err, tc.reason)
		}
	}
}

func TestQueueNameErrorQuotesName(t *testing.T) {
	err := pgmqclient.ValidateQueueName("a\nb")
	if got := err.Error(); strings.Contains(got, "\n") || !strings.Contains(got, `"a\nb"`) {
		t.Errorf("error %q should quote the name", got)
	}
}

func TestQueueTableIsQuotedAndLowerCase(t *testing.T) {
	for name, want := range map[string]string{
		"orders":    `"pgmq"."q_orders"`,
		"MixedCase": `"pgmq"."q_mixedcase"`,
	} {
		q, err := pgmqclient.QueueTable(name)
		if err != nil || q != want {
			t.Errorf("queueTable(%q) = %q, %v; want %q", name, q, err, want)
		}
	}
	if _, err := pgmqclient.QueueTable(`x"; drop table y; --`); !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
		t.Errorf("queueTable of a hostile name: %v, want ErrInvalidQueueName", err)
	}
}

func TestOpErrorFormat(t *testing.T) {
	cause := errors.New("boom")
	err := &pgmqclient.OpError{Op: "send", Queue: "orders", Err: cause}
	if got, want := err.Error(), `pgmqclient: send queue "orders": boom`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("OpError does not unwrap to its cause")
	}
	all := &pgmqclient.OpError{Op: "list queues", Err: cause}
	if got, want := all.Error(), `pgmqclient: list queues: boom`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// The package prefix of a wrapped cause is not repeated.
	wrapped := &pgmqclient.OpError{Op: "send", Queue: "a;b", Err: pgmqclient.ValidateQueueName("a;b")}
	if got := wrapped.Error(); strings.Count(got, "pgmqclient:") != 1 || !strings.Contains(got, `invalid queue name "a;b"`) {
		t.Errorf("Error() = %q", got)
	}
}
