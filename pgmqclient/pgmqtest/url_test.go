package pgmqtest

import "testing"

func TestWithDatabase(t *testing.T) {
	for server, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/postgres": "postgres://postgres@127.0.0.1:5432/pgmqtest_x",
		"postgresql://u:p%40ss@h/db?sslmode=disable":  "postgresql://u:p%40ss@h/pgmqtest_x?sslmode=disable",
		"postgres://h": "postgres://h/pgmqtest_x",
		"host=127.0.0.1 user=postgres dbname=postgres": "host=127.0.0.1 user=postgres dbname=postgres dbname=pgmqtest_x",
	} {
		if got := withDatabase(server, "pgmqtest_x"); got != want {
			t.Errorf("withDatabase(%q) = %q, want %q", server, got, want)
		}
	}
}
