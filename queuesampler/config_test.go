package queuesampler_test

import (
	"testing"

	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Two deployments share a lease only when they select the same queues.
// Before, the key hashed the named queues joined by ',' (which PGMQ
// accepts in a name) and ignored the patterns: queue "a,b" and the pair
// "a", "b" shared a lease, as did include patterns "orders_*" and
// "billing_*", and one of each pair exported nothing.
func TestElectionKeyCoversTheSelection(t *testing.T) {
	distinct := []queuedepth.Options{
		{},
		{Queues: []string{"a,b"}},
		{Queues: []string{"a", "b"}},
		{Include: []string{"orders_*"}},
		{Include: []string{"billing_*"}},
		{Exclude: []string{"orders_*"}},
		{Queues: []string{"orders_*"}},
		{Include: []string{"a"}, Exclude: []string{"b"}},
		{Include: []string{"b"}, Exclude: []string{"a"}},
		{Include: []string{"a", "b"}},
	}
	seen := map[int64]int{}
	for i, sel := range distinct {
		k := queuesampler.ElectionKey(sel)
		if j, ok := seen[k]; ok {
			t.Errorf("selections %+v and %+v share election key %d", distinct[j], sel, k)
		}
		seen[k] = i
	}
	// The same selection, however written, is one election.
	same := [][2]queuedepth.Options{
		{{Queues: []string{"b", "A"}}, {Queues: []string{"a", "B", "a"}}},
		{{Include: []string{"X_*", "y"}}, {Include: []string{"y", "x_*"}}},
	}
	for _, p := range same {
		if queuesampler.ElectionKey(p[0]) != queuesampler.ElectionKey(p[1]) {
			t.Errorf("%+v and %+v differ", p[0], p[1])
		}
	}
}
