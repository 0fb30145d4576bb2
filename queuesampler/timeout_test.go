package queuesampler_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// A sample that runs out of time stops between round trips and keeps its
// session, so what the session warmed (the server's caches of the queue
// tables, the statements kept prepared) serves the next sample. Before,
// the sample's deadline cut a round trip in flight, pgx closed the
// connection, and the next sample started cold on a new one: a database
// whose first sample takes longer than the sample timeout, and later ones
// less (5,000 queues on a loaded machine: 1.7 to 2.2 s cold, 0.8 to 1 s
// warm, against the default 2 s), timed out at every interval, never
// reporting. Here a proxy's latency makes each round trip slow, so every
// sample runs out of time; the sampler must keep its one connection, and
// report the queues once the latency is gone.
func TestTimedOutSampleKeepsItsSession(t *testing.T) {
	db := pgmqtest.New(t)
	// Every queue holds a message, so each is probed: several round trips.
	db.CreateQueues(t, "slow_", 1200, func(int) int { return 1 })
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	s := newSampler(t, u.String(), queuesampler.Config{NoElection: true, SampleTimeout: time.Second})

	// Connect and warm up without latency, then make round trips slow.
	get(t, s)
	proxy.SetDelay(40 * time.Millisecond)
	for i := range 3 {
		sample, err := s.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sample.Err == nil || queuesampler.ErrorType(sample.Err) != "timeout" {
			t.Fatalf("sample %d under latency: %+v, want a timeout", i, sample)
		}
	}
	if st := s.Stats(); st.Connects != 1 || proxy.Accepted() != 1 {
		t.Fatalf("%d connections made (%d through the proxy) over three timed-out samples, want the first kept", st.Connects, proxy.Accepted())
	}
	proxy.SetDelay(0)
	if got := len(get(t, s).Queues); got != 1200 {
		t.Fatalf("%d queues after the latency, want 1200", got)
	}
	if st := s.Stats(); st.Connects != 1 {
		t.Fatalf("%d connections, want 1", st.Connects)
	}
}
