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
		// PGMQ and other clients accept these, so the client does too.
		"nc-dash", "MixedCase-Queue", "1abc", "a.b", "with space", " lead",
		"trail\n", `a"b`, `"`, "a-b-c", "-", "a/*b*/", `\`, "tab\there", "x-",
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
		{"a--b", `"--"`},
		{"$1", "'$'"},
		{"名前", "non-ASCII"},
		{"café", "non-ASCII"},
		{"İstanbul", "non-ASCII"},
		{"\xff", "non-ASCII"},
		{"a\x00b", `'\x00'`},
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
	err := pgmqclient.ValidateQueueName("a\n;b")
	if got := err.Error(); strings.Contains(got, "\n") || !strings.Contains(got, `"a\n;b"`) {
		t.Errorf("error %q should quote the name", got)
	}
}

func TestQuoteTable(t *testing.T) {
	for rel, want := range map[string]string{
		"q_orders":  `"pgmq"."q_orders"`,
		"q_nc-dash": `"pgmq"."q_nc-dash"`,
		`q_a"b`:     `"pgmq"."q_a""b"`,
	} {
		if got := pgmqclient.QuoteTable(rel); got != want {
			t.Errorf("quoteTable(%q) = %s, want %s", rel, got, want)
		}
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
