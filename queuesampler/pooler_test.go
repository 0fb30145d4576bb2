package queuesampler_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// Behind PgBouncer 1.18 in transaction mode, with other clients keeping
// its server connections busy (and server_round_robin moving each
// transaction to another one), the sampler reports the depth at every
// sample in every exec mode a pgx user may set, equal to count(*), and
// leaves no prepared statement on any server connection. Before, every
// mode but the two cache modes reported the queues once and then failed
// with 26000 (exec, describe_exec) or 25P02 (simple_protocol): the
// sampler prepared its fixed statements on whichever server connection it
// was lent.
func TestEveryExecModeThroughTransactionPooler(t *testing.T) {
	const poolSize = 4
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			b := newBounced(t, map[string]string{"default_pool_size": "4", "server_round_robin": "1"})
			ctx := context.Background()
			if err := b.client.CreateQueue(ctx, "jobs"); err != nil {
				t.Fatal(err)
			}
			stop := busyClients(b.dsn(""), 3)
			defer stop()
			s := newSampler(t, b.dsn("default_query_exec_mode="+mode), queuesampler.Config{})
			for i := range 8 {
				if _, err := b.client.Send(ctx, "jobs", json.RawMessage(`{}`)); err != nil {
					t.Fatal(err)
				}
				sample := get(t, s)
				if len(sample.Queues) != 1 || sample.Queues[0].Err != nil || sample.Queues[0].Depth != count(t, b.db, "jobs") {
					t.Fatalf("sample %d: %+v, want depth %d", i, sample.Queues, count(t, b.db, "jobs"))
				}
			}
			if f := s.Failures(); len(f) != 0 {
				t.Fatalf("failures counted: %v", f)
			}
			stop()
			pids, names := serverConnStatements(t, b.dsn(""), poolSize)
			if len(pids) != poolSize {
				t.Fatalf("%d server connections seen, want %d", len(pids), poolSize)
			}
			if len(names) > 0 {
				t.Fatalf("prepared statements left on the server connections: %v", names)
			}
		})
	}
}
