package queuedepth_test

import (
	"testing"

	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// Patterns select queues case-insensitively, and their wildcards match every
// character a queue name may hold, the slash included.
func TestMatchQueuePatterns(t *testing.T) {
	for _, tc := range []struct {
		name             string
		include, exclude []string
		want             bool
	}{
		{"orders", nil, nil, true},
		{"Orders_EU", []string{"orders_*"}, nil, true},
		{"orders_eu/1", []string{"orders_*"}, nil, true},
		{"orders/eu", []string{"orders?eu"}, nil, true},
		{"orders/eu", []string{"orders/*"}, nil, true},
		{"billing", []string{"orders_*"}, nil, false},
		{"orders_tmp", []string{"orders_*"}, []string{"*_tmp"}, false},
		{"nc-dash", nil, []string{"nc-*"}, false},
	} {
		if got := queuedepth.MatchPatterns(tc.name, tc.include, tc.exclude); got != tc.want {
			t.Errorf("MatchQueuePatterns(%q, %q, %q) = %v, want %v", tc.name, tc.include, tc.exclude, got, tc.want)
		}
	}
}
