package queuesampler

import (
	"context"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// The sampler sets nothing on its session, so a pooler in transaction mode
// has nothing to refuse or leak to the application's sessions: its
// timeouts are local to each of the sample's transactions.
func TestSamplerSetsNothingOnTheSession(t *testing.T) {
	db := pgmqtest.New(t)
	s, err := New(Config{Conn: db.Pool.Config(), SampleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sample, err := s.Get(context.Background()); err != nil || sample.Err != nil {
		t.Fatalf("sample: %v %+v", err, sample)
	}
	conn := s.conn.conn
	if conn == nil {
		t.Fatal("no sampler connection after a sample")
	}
	for setting, want := range map[string]string{
		"application_name":  AppName,
		"statement_timeout": "0",
		"lock_timeout":      "0",
		"plan_cache_mode":   "auto",
	} {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}
