package pgmqclient_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
)

// Names that PGMQ and other clients accept but that the client refused
// before: a hyphen, mixed case, a dot, a space, a leading digit. Each one
// goes through every Client operation on real PostgreSQL, called once by
// the name as created and once by another spelling of its case (PGMQ folds
// names), against whatever PGMQ pgmqtest installed (PGMQ_SQL for PGMQ's
// own SQL file, compat otherwise).
func TestNamesThroughWholeClient(t *testing.T) {
	for _, tc := range []struct{ name, other string }{
		{"nc-dash", "NC-DASH"},
		{"Mixed-Case", "mixed-case"},
		{"orders.v2", "ORDERS.V2"},
		{"with space", "With Space"},
		{"1st-Queue", "1ST-queue"},
		{`say"hi"`, `SAY"HI"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, c, db := setup(t)
			t.Logf("PGMQ by %s", db.Install)
			// Created once: PGMQ's create, given another spelling, adds a
			// second pgmq.meta row for the same tables.
			if err := c.CreateQueue(ctx, tc.name); err != nil {
				t.Fatalf("create %q: %v", tc.name, err)
			}
			if err := c.CreateUnloggedQueue(ctx, tc.name+"-u"); err != nil {
				t.Fatalf("create unlogged: %v", err)
			}
			msg := json.RawMessage(`{"k":1}`)
			q, o := tc.name, tc.other
			id1, err := c.Send(ctx, q, msg, pgmqclient.WithHeaders(json.RawMessage(`{"h":1}`)))
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			batch, err := c.SendBatch(ctx, o, []json.RawMessage{msg, msg, msg, msg, msg})
			if err != nil || len(batch) != 5 {
				t.Fatalf("send batch: %v %v", batch, err)
			}
			if n := size(t, ctx, c, o); n != 6 {
				t.Fatalf("size = %d, want 6", n)
			}
			read, err := c.Read(ctx, o, time.Minute, 2)
			if err != nil || len(read) != 2 || read[0].ID != id1 {
				t.Fatalf("read: %v %v", ids(read), err)
			}
			polled, err := c.ReadWithPoll(ctx, q, time.Minute, 1, time.Second, 10*time.Millisecond)
			if err != nil || len(polled) != 1 {
				t.Fatalf("read with poll: %v %v", ids(polled), err)
			}
			if m, err := c.SetVisibilityTimeout(ctx, o, read[1].ID, 0); err != nil || m.ID != read[1].ID {
				t.Fatalf("set vt: %v %v", m.ID, err)
			}
			popped, err := c.Pop(ctx, q, 1)
			if err != nil || len(popped) != 1 || popped[0].ID != read[1].ID {
				t.Fatalf("pop: %v %v", ids(popped), err)
			}
			if ok, err := c.Delete(ctx, o, id1); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if ok, err := c.Archive(ctx, q, polled[0].ID); err != nil || !ok {
				t.Fatalf("archive: %v %v", ok, err)
			}
			rest := batch[2:]
			if got, err := c.DeleteBatch(ctx, q, rest[:1]); err != nil || len(got) != 1 {
				t.Fatalf("delete batch: %v %v", got, err)
			}
			if got, err := c.ArchiveBatch(ctx, o, rest[1:2]); err != nil || len(got) != 1 {
				t.Fatalf("archive batch: %v %v", got, err)
			}
			m, err := c.Metrics(ctx, o)
			if err != nil || m.Length != 1 || m.TotalMessages != 6 {
				t.Fatalf("metrics: %+v %v", m, err)
			}
			all, err := c.MetricsAll(ctx)
			if err != nil || len(all) != 2 {
				t.Fatalf("metrics all: %+v %v", all, err)
			}
			sampler, err := queuedepth.New(queuedepth.Options{Queues: []string{o}})
			if err != nil {
				t.Fatal(err)
			}
			depths, err := sampler.SamplePool(ctx, c.DB().(*pgxpool.Pool))
			if err != nil || len(depths) != 1 || depths[0].Name != q || depths[0].Depth != 1 {
				t.Fatalf("sample depths: %+v %v", depths, err)
			}
			list, err := c.ListQueues(ctx)
			if err != nil || len(list) != 2 || (list[0].Name != q && list[1].Name != q) {
				t.Fatalf("list queues: %+v %v", list, err)
			}
			if n, err := c.PurgeQueue(ctx, q); err != nil || n != 1 {
				t.Fatalf("purge: %d %v", n, err)
			}
			// Dropped by the name as created: PGMQ's drop_queue matches
			// pgmq.meta's name exactly on some releases.
			for _, n := range []string{q, tc.name + "-u"} {
				if ok, err := c.DropQueue(ctx, n); err != nil || !ok {
					t.Fatalf("drop %q: %v %v", n, ok, err)
				}
			}
			if _, err := c.QueueSize(ctx, q); !errors.Is(err, pgmqclient.ErrQueueNotFound) {
				t.Fatalf("size after drop: %v, want ErrQueueNotFound", err)
			}
		})
	}
}

// A database without PGMQ: every call says PGMQ is missing and how to
// install it, never "queue not found".
func TestMissingPGMQIsNotAMissingQueue(t *testing.T) {
	ctx, c, db := setup(t)
	db.RemovePGMQ(t)
	calls := append(clientCalls[:len(clientCalls):len(clientCalls)], struct {
		name string
		do   func(*pgmqclient.Client, string) error
	}{"ListQueues", func(c *pgmqclient.Client, _ string) error { _, err := c.ListQueues(ctx); return err }},
		struct {
			name string
			do   func(*pgmqclient.Client, string) error
		}{"MetricsAll", func(c *pgmqclient.Client, _ string) error { _, err := c.MetricsAll(ctx); return err }})
	for _, call := range calls {
		err := call.do(c, "orders")
		if !errors.Is(err, pgmqclient.ErrPGMQNotInstalled) || errors.Is(err, pgmqclient.ErrQueueNotFound) {
			t.Errorf("%s: %v, want ErrPGMQNotInstalled and not ErrQueueNotFound", call.name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "CREATE EXTENSION pgmq") || !strings.Contains(msg, "pgmq.sql") {
			t.Errorf("%s: %q does not say how to install PGMQ", call.name, msg)
		}
	}
	// With PGMQ present, a missing queue is still a missing queue.
	db2 := pgmqtest.New(t)
	if _, err := pgmqclient.New(db2.Pool).QueueSize(ctx, "nope"); !errors.Is(err, pgmqclient.ErrQueueNotFound) || errors.Is(err, pgmqclient.ErrPGMQNotInstalled) {
		t.Errorf("size of a missing queue: %v", err)
	}
}

// A missing PGMQ names where the client looked: the database, the user
// and the server, over TCP and over a Unix socket (where an empty
// connection string leads, as the OS user), so that a program connected
// to the wrong place says so. The depth sampler's error says the same.
func TestMissingPGMQNamesTheDatabase(t *testing.T) {
	ctx, c, db := setup(t)
	db.RemovePGMQ(t)
	cfg := db.Pool.Config().ConnConfig
	want := fmt.Sprintf("PGMQ is not installed in database %q (user %q) on %s", db.Name, cfg.User,
		net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	for name, do := range map[string]func() error{
		"CreateQueue": func() error { return c.CreateQueue(ctx, "orders") },
		"QueueSize":   func() error { _, err := c.QueueSize(ctx, "orders"); return err },
		"ListQueues":  func() error { _, err := c.ListQueues(ctx); return err },
		"queuedepth": func() error {
			s, err := queuedepth.New(queuedepth.Options{})
			if err != nil {
				return err
			}
			_, err = s.SamplePool(ctx, db.Pool)
			return err
		},
	} {
		if err := do(); !errors.Is(err, pgmqclient.ErrPGMQNotInstalled) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v\nwant ErrPGMQNotInstalled saying %q", name, err, want)
		}
	}

	var sockets string
	if err := db.Pool.QueryRow(ctx, "SELECT current_setting('unix_socket_directories')").Scan(&sockets); err != nil {
		t.Fatal(err)
	}
	dir, _, _ := strings.Cut(sockets, ",")
	dir = strings.TrimSpace(dir)
	sock := fmt.Sprintf("%s/.s.PGSQL.%d", dir, cfg.Port)
	if _, err := os.Stat(sock); dir == "" || !strings.HasPrefix(dir, "/") || err != nil {
		t.Skipf("the server has no Unix socket here (%q, %v): the socket case is not tested", sockets, err)
	}
	pc, err := pgxpool.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s", dir, cfg.Port, cfg.User, db.Name))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = pgmqclient.New(pool).CreateQueue(ctx, "orders")
	want = fmt.Sprintf("PGMQ is not installed in database %q (user %q) on %s (Unix socket)", db.Name, cfg.User, sock)
	if !errors.Is(err, pgmqclient.ErrPGMQNotInstalled) || !strings.Contains(err.Error(), want) {
		t.Errorf("over the socket: %v\nwant ErrPGMQNotInstalled saying %q", err, want)
	}
}

// PGMQ names a queue's table with the server's lower(), which depends on
// the database's locale: under a Turkish ICU locale lower('I') is a
// dotless ı, so queue "Items" lives in pgmq."q_ıtems". The client lets the
// server fold the name, so it finds the table Go's strings.ToLower would
// miss.
func TestQueueTableFoldedByTheServer(t *testing.T) {
	t.Parallel()
	db := pgmqtest.NewWithOptions(t, "TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'tr-TR'")
	ctx := t.Context()
	c := pgmqclient.New(db.Pool)
	if err := c.CreateQueue(ctx, "Items"); err != nil {
		t.Fatal(err)
	}
	sendN(t, ctx, c, "Items", 3)
	table, err := pgmqclient.QueueTable(ctx, db.Pool, "Items")
	if err != nil {
		t.Fatal(err)
	}
	if want := `"pgmq"."q_ıtems"`; table != want {
		t.Fatalf("table of Items = %s, want %s (the server's lower())", table, want)
	}
	if n := size(t, ctx, c, "Items"); n != 3 {
		t.Fatalf("size = %d, want 3", n)
	}
}
