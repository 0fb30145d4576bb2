package pgmqclient_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

func TestSendReadDelete(t *testing.T) {
	ctx, c, _ := setup(t, "work")
	if got := size(t, ctx, c, "work"); got != 0 {
		t.Fatalf("fresh queue size = %d", got)
	}
	sent := sendN(t, ctx, c, "work", 10)
	if got := size(t, ctx, c, "work"); got != 10 {
		t.Fatalf("size after ten sends = %d", got)
	}
	msgs, err := c.Read(ctx, "work", time.Hour, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(msgs), sent[:4]) {
		t.Fatalf("Read ids = %v, want the four oldest %v", ids(msgs), sent[:4])
	}
	for i, m := range msgs {
		if m.ReadCount != 1 || m.EnqueuedAt.IsZero() || !m.VisibleAt.After(m.EnqueuedAt) {
			t.Errorf("message %d = %+v", i, m)
		}
		if !jsonEqual(t, m.Payload, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))) {
			t.Errorf("payload %d = %s", i, m.Payload)
		}
		if m.Headers != nil {
			t.Errorf("headers of a message sent without = %s", m.Headers)
		}
	}
	ok, err := c.Delete(ctx, "work", sent[0])
	if err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	ok, err = c.Delete(ctx, "work", sent[0])
	if err != nil || ok {
		t.Fatalf("Delete of a deleted message = %v, %v; want false", ok, err)
	}
	if got := size(t, ctx, c, "work"); got != 9 {
		t.Errorf("size after delete = %d, want 9", got)
	}
	gone, err := c.DeleteBatch(ctx, "work", []int64{sent[2], sent[1], 1_000_000})
	if err != nil || !slices.Equal(gone, []int64{sent[1], sent[2]}) {
		t.Fatalf("DeleteBatch = %v, %v; want %v", gone, err, sent[1:3])
	}
	if got := size(t, ctx, c, "work"); got != 7 {
		t.Errorf("size after batch delete = %d, want 7", got)
	}
}

func TestArchive(t *testing.T) {
	ctx, c, db := setup(t, "Arch")
	sent := sendN(t, ctx, c, "Arch", 6)
	ok, err := c.Archive(ctx, "Arch", sent[0])
	if err != nil || !ok {
		t.Fatalf("Archive = %v, %v", ok, err)
	}
	if ok, err := c.Archive(ctx, "Arch", sent[0]); err != nil || ok {
		t.Fatalf("Archive of an archived message = %v, %v; want false", ok, err)
	}
	moved, err := c.ArchiveBatch(ctx, "Arch", []int64{sent[3], sent[2], -1})
	if err != nil || !slices.Equal(moved, []int64{sent[2], sent[3]}) {
		t.Fatalf("ArchiveBatch = %v, %v", moved, err)
	}
	if got := size(t, ctx, c, "Arch"); got != 3 {
		t.Errorf("size after archiving three = %d", got)
	}
	// PGMQ folds the name to lower case for its tables.
	rows, err := db.Pool.Query(ctx, `SELECT msg_id FROM pgmq.a_arch ORDER BY msg_id`)
	if err != nil {
		t.Fatal(err)
	}
	archived, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || !slices.Equal(archived, []int64{sent[0], sent[2], sent[3]}) {
		t.Errorf("archive table holds %v (%v), want %v", archived, err, []int64{sent[0], sent[2], sent[3]})
	}
	var payload json.RawMessage
	if err := db.Pool.QueryRow(ctx, `SELECT message FROM pgmq.a_arch WHERE msg_id = $1`, sent[2]).Scan(&payload); err != nil ||
		!jsonEqual(t, payload, json.RawMessage(`{"n":2}`)) {
		t.Errorf("archived payload = %s, %v", payload, err)
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	ctx, c, _ := setup(t, "hdr")
	h := json.RawMessage(`{"traceparent": "00-abc-def-01", "n": 1, "nested": {"k": [1, 2]}}`)
	id, err := c.Send(ctx, "hdr", json.RawMessage(`[1, "two"]`), pgmqclient.WithHeaders(h))
	if err != nil {
		t.Fatal(err)
	}
	same := json.RawMessage(`{"batch": true}`)
	batch, err := c.SendBatch(ctx, "hdr", []json.RawMessage{[]byte(`1`), []byte(`2`)}, pgmqclient.WithHeaders(same))
	if err != nil {
		t.Fatal(err)
	}
	each, err := c.SendBatch(ctx, "hdr", []json.RawMessage{[]byte(`"a"`), []byte(`"b"`)},
		pgmqclient.WithBatchHeaders([]json.RawMessage{[]byte(`{"i":0}`), nil}))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Read(ctx, "hdr", time.Minute, 10)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("Read = %d messages, %v", len(msgs), err)
	}
	want := map[int64][2]json.RawMessage{
		id:       {[]byte(`[1, "two"]`), h},
		batch[0]: {[]byte(`1`), same},
		batch[1]: {[]byte(`2`), same},
		each[0]:  {[]byte(`"a"`), []byte(`{"i":0}`)},
		each[1]:  {[]byte(`"b"`), nil},
	}
	for _, m := range msgs {
		w := want[m.ID]
		if !jsonEqual(t, m.Payload, w[0]) || !jsonEqual(t, m.Headers, w[1]) {
			t.Errorf("message %d: payload %s headers %s; want %s and %s", m.ID, m.Payload, m.Headers, w[0], w[1])
		}
	}
}

func TestSendBatch(t *testing.T) {
	ctx, c, _ := setup(t, "batch")
	payloads := make([]json.RawMessage, 25)
	for i := range payloads {
		payloads[i] = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
	}
	got, err := c.SendBatch(ctx, "batch", payloads)
	if err != nil || len(got) != 25 {
		t.Fatalf("SendBatch = %v, %v", got, err)
	}
	msgs, err := c.Read(ctx, "batch", time.Minute, 100)
	if err != nil || len(msgs) != 25 {
		t.Fatalf("Read = %d, %v", len(msgs), err)
	}
	// Ids come back in payload order.
	for i, m := range msgs {
		if m.ID != got[i] || !jsonEqual(t, m.Payload, payloads[i]) {
			t.Errorf("message %d = id %d %s; want id %d %s", i, m.ID, m.Payload, got[i], payloads[i])
		}
	}
}

// A delayed message is not delivered before it is due, and is once due.
func TestDelayedSend(t *testing.T) {
	ctx, c, db := setup(t, "later")
	far, err := c.Send(ctx, "later", []byte(`"far"`), pgmqclient.WithDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// 1.5s rounds up to 2s.
	soon, err := c.Send(ctx, "later", []byte(`"soon"`), pgmqclient.WithDelay(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var due, enqueued time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT vt, enqueued_at FROM pgmq.q_later WHERE msg_id = $1`, soon).Scan(&due, &enqueued); err != nil {
		t.Fatal(err)
	}
	if d := due.Sub(enqueued); d < 2*time.Second {
		t.Errorf("delay of 1.5s gave vt - enqueued_at = %v, want at least 2s (rounded up)", d)
	}

	var got []pgmqclient.Message
	waitFor(t, "the delayed message", 30*time.Second, func() (bool, error) {
		got, err = c.Read(ctx, "later", time.Hour, 10)
		return len(got) > 0, err
	})
	if len(got) != 1 || got[0].ID != soon {
		t.Fatalf("read %v, want only %d (the far one is not due)", ids(got), soon)
	}
	// Read set vt to its own clock plus one hour: so it read at readAt.
	if readAt := got[0].VisibleAt.Add(-time.Hour); readAt.Before(due) {
		t.Errorf("message read at %v, before it was due at %v", readAt, due)
	}
	m, err := c.Metrics(ctx, "later")
	if err != nil || m.Length != 2 || m.VisibleLength != 0 {
		t.Errorf("Metrics = %+v, %v; want 2 messages, none visible (%d still delayed)", m, err, far)
	}
}

func TestSendBatchWithDelay(t *testing.T) {
	ctx, c, db := setup(t, "bd")
	sent, err := c.SendBatch(ctx, "bd", []json.RawMessage{[]byte(`1`), []byte(`2`), []byte(`3`)}, pgmqclient.WithDelay(time.Hour))
	if err != nil || len(sent) != 3 {
		t.Fatalf("SendBatch = %v, %v", sent, err)
	}
	msgs, err := c.Read(ctx, "bd", 0, 10)
	if err != nil || len(msgs) != 0 {
		t.Errorf("Read of delayed messages = %v, %v; want none", ids(msgs), err)
	}
	m, err := c.Metrics(ctx, "bd")
	if err != nil || m.Length != 3 || m.VisibleLength != 0 {
		t.Errorf("Metrics = %+v, %v; want 3 invisible", m, err)
	}
	var early int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pgmq.q_bd WHERE vt - enqueued_at < interval '1 hour'`).Scan(&early); err != nil || early != 0 {
		t.Errorf("%d messages due within the hour (%v)", early, err)
	}
}

func TestVisibilityTimeout(t *testing.T) {
	ctx, c, _ := setup(t, "vt")
	sent := sendN(t, ctx, c, "vt", 10)
	if _, err := c.Read(ctx, "vt", time.Hour, 3); err != nil {
		t.Fatal(err)
	}
	m, err := c.Metrics(ctx, "vt")
	if err != nil || m.Length != 10 || m.VisibleLength != 7 {
		t.Fatalf("Metrics after reading 3 = %+v, %v; want length 10, visible 7", m, err)
	}
	again, err := c.Read(ctx, "vt", time.Hour, 100)
	if err != nil || !slices.Equal(ids(again), sent[3:]) {
		t.Fatalf("second Read = %v, %v; want the 7 still visible", ids(again), err)
	}

	// set_vt 0 makes an invisible message visible again.
	upd, err := c.SetVisibilityTimeout(ctx, "vt", sent[0], 0)
	if err != nil || upd.ID != sent[0] || upd.ReadCount != 1 {
		t.Fatalf("SetVisibilityTimeout = %+v, %v", upd, err)
	}
	back, err := c.Read(ctx, "vt", time.Hour, 100)
	if err != nil || !slices.Equal(ids(back), sent[:1]) || back[0].ReadCount != 2 {
		t.Fatalf("Read after SetVisibilityTimeout = %+v, %v; want %d read twice", back, err, sent[0])
	}
	// And a long one hides it.
	if _, err := c.SetVisibilityTimeout(ctx, "vt", sent[0], 0); err != nil {
		t.Fatal(err)
	}
	hid, err := c.SetVisibilityTimeout(ctx, "vt", sent[0], 90*time.Minute)
	if err != nil || !hid.VisibleAt.After(time.Now().Add(80*time.Minute)) {
		t.Fatalf("SetVisibilityTimeout(90m) = %+v, %v", hid, err)
	}
	if m, err := c.Metrics(ctx, "vt"); err != nil || m.VisibleLength != 0 {
		t.Errorf("Metrics = %+v, %v; want none visible", m, err)
	}

	_, err = c.SetVisibilityTimeout(ctx, "vt", 999_999, 0)
	if !errors.Is(err, pgmqclient.ErrMessageNotFound) {
		t.Errorf("SetVisibilityTimeout of a missing message: %v, want ErrMessageNotFound", err)
	}
}

func TestLastReadAt(t *testing.T) {
	ctx, c, db := setup(t, "lra")
	var hasColumn bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM pg_attribute AS a JOIN pg_type AS t ON a.attrelid = t.typrelid
		WHERE t.oid = 'pgmq.message_record'::regtype AND a.attname = 'last_read_at' AND NOT a.attisdropped)`).Scan(&hasColumn); err != nil {
		t.Fatal(err)
	}
	id := sendN(t, ctx, c, "lra", 1)[0]
	msgs, err := c.Read(ctx, "lra", 0, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Read = %v, %v", msgs, err)
	}
	got := msgs[0].LastReadAt
	switch {
	case !hasColumn && got != nil:
		t.Errorf("LastReadAt = %v on a server without the column", got)
	case hasColumn && (got == nil || got.Before(msgs[0].EnqueuedAt)):
		t.Errorf("LastReadAt = %v, want a time after enqueued_at %v", got, msgs[0].EnqueuedAt)
	}
	t.Logf("server has last_read_at: %v", hasColumn)
	popped, err := c.Pop(ctx, "lra", 1)
	if err != nil || len(popped) != 1 || popped[0].ID != id {
		t.Fatalf("Pop = %v, %v", popped, err)
	}
}

func TestPop(t *testing.T) {
	ctx, c, _ := setup(t, "popq")
	sent := sendN(t, ctx, c, "popq", 6)
	got, err := c.Pop(ctx, "popq", 4)
	if err != nil || !slices.Equal(ids(got), sent[:4]) {
		t.Fatalf("Pop(4) = %v, %v; want %v", ids(got), err, sent[:4])
	}
	if !jsonEqual(t, got[0].Payload, json.RawMessage(`{"n":0}`)) {
		t.Errorf("popped payload = %s", got[0].Payload)
	}
	if n := size(t, ctx, c, "popq"); n != 2 {
		t.Errorf("size after pop = %d", n)
	}
	got, err = c.Pop(ctx, "popq", 10)
	if err != nil || !slices.Equal(ids(got), sent[4:]) {
		t.Fatalf("Pop(10) = %v, %v; want the last two", ids(got), err)
	}
	got, err = c.Pop(ctx, "popq", 1)
	if err != nil || len(got) != 0 {
		t.Errorf("Pop of an empty queue = %v, %v", got, err)
	}
}

// The fallback for releases whose pop(name) takes one message.
func TestPopSingleMessageServers(t *testing.T) {
	ctx, c, _ := setup(t, "pop1")
	if err := pgmqclient.UseSingleMessagePop(ctx, c); err != nil {
		t.Fatal(err)
	}
	sent := sendN(t, ctx, c, "pop1", 5)
	// One message hidden: pop skips it.
	if _, err := c.SetVisibilityTimeout(ctx, "pop1", sent[1], time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := c.Pop(ctx, "pop1", 3)
	if err != nil || !slices.Equal(ids(got), []int64{sent[0], sent[2], sent[3]}) {
		t.Fatalf("Pop(3) = %v, %v", ids(got), err)
	}
	got, err = c.Pop(ctx, "pop1", 100)
	if err != nil || !slices.Equal(ids(got), sent[4:]) {
		t.Fatalf("Pop(100) = %v, %v; want only %v", ids(got), err, sent[4:])
	}
	if n := size(t, ctx, c, "pop1"); n != 1 {
		t.Errorf("size = %d, want the hidden one", n)
	}
}

func TestReadWithPollReturnsWhenAMessageArrives(t *testing.T) {
	ctx, c, db := setup(t, "poll")
	type result struct {
		msgs []pgmqclient.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := c.ReadWithPoll(ctx, "poll", time.Minute, 5, 60*time.Second, 20*time.Millisecond)
		done <- result{msgs, err}
	}()
	waitFor(t, "read_with_poll to be polling", 30*time.Second, func() (bool, error) {
		var n int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active'
			AND query LIKE '%read_with_poll%' AND pid <> pg_backend_pid()`).Scan(&n)
		return n > 0, err
	})
	id, err := c.Send(ctx, "poll", []byte(`{"wake":1}`))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || !slices.Equal(ids(r.msgs), []int64{id}) {
			t.Fatalf("ReadWithPoll = %v, %v; want [%d]", ids(r.msgs), r.err, id)
		}
	case <-time.After(2 * time.Minute): // a guard against hanging, not a timing assertion
		t.Fatal("ReadWithPoll did not return")
	}
}

func TestReadWithPollGivesUpEmpty(t *testing.T) {
	ctx, c, _ := setup(t, "quiet")
	msgs, err := c.ReadWithPoll(ctx, "quiet", time.Minute, 1, time.Nanosecond, time.Millisecond)
	if err != nil || len(msgs) != 0 {
		t.Errorf("ReadWithPoll of an empty queue = %v, %v", msgs, err)
	}
	id := sendN(t, ctx, c, "quiet", 1)[0]
	msgs, err = c.ReadWithPoll(ctx, "quiet", time.Minute, 1, time.Second, time.Millisecond)
	if err != nil || !slices.Equal(ids(msgs), []int64{id}) {
		t.Errorf("ReadWithPoll with a message waiting = %v, %v", ids(msgs), err)
	}
}

// Two readers at once never receive the same message, and together they
// receive every message.
func TestConcurrentReadersNeverShareAMessage(t *testing.T) {
	ctx, c, _ := setup(t, "shared")
	const total = 300
	payloads := make([]json.RawMessage, total)
	for i := range payloads {
		payloads[i] = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
	}
	sent, err := c.SendBatch(ctx, "shared", payloads)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		got  [2][]int64
		errs [2]error
	)
	for r := range 2 {
		wg.Go(func() {
			// Bounded: at most total iterations, each taking at least one message.
			for range total {
				msgs, err := c.Read(ctx, "shared", time.Hour, 7)
				if err != nil {
					errs[r] = err
					return
				}
				if len(msgs) == 0 {
					return
				}
				got[r] = append(got[r], ids(msgs)...)
			}
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("readers failed: %v, %v", errs[0], errs[1])
	}
	seen := map[int64]int{}
	for r := range 2 {
		for _, id := range got[r] {
			seen[id]++
			if seen[id] > 1 {
				t.Errorf("message %d delivered twice", id)
			}
		}
	}
	if len(seen) != total {
		t.Errorf("readers received %d distinct messages, want %d", len(seen), total)
	}
	for _, id := range sent {
		if seen[id] == 0 {
			t.Errorf("message %d never delivered", id)
		}
	}
	t.Logf("reader shares: %d and %d", len(got[0]), len(got[1]))
}

// A client over a pgx.Tx joins the transaction: rollback undoes a send,
// commit keeps it.
func TestInsideTransaction(t *testing.T) {
	ctx, c, db := setup(t, "txq")
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	inTx := pgmqclient.New(tx)
	if inTx.DB() != pgmqclient.DB(tx) {
		t.Error("DB() does not return the transaction")
	}
	if _, err := inTx.Send(ctx, "txq", []byte(`{"tx":1}`)); err != nil {
		t.Fatal(err)
	}
	if n := size(t, ctx, inTx, "txq"); n != 1 {
		t.Errorf("size inside the transaction = %d, want 1", n)
	}
	if n := size(t, ctx, c, "txq"); n != 0 {
		t.Errorf("size outside the uncommitted transaction = %d, want 0", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := size(t, ctx, c, "txq"); n != 0 {
		t.Errorf("size after rollback = %d, want 0", n)
	}

	tx2, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx2.Rollback(ctx) }()
	in2 := pgmqclient.New(tx2)
	if _, err := in2.SendBatch(ctx, "txq", []json.RawMessage{[]byte(`1`), []byte(`2`)}); err != nil {
		t.Fatal(err)
	}
	popped, err := in2.Pop(ctx, "txq", 1)
	if err != nil || len(popped) != 1 {
		t.Fatalf("Pop in transaction = %v, %v", popped, err)
	}
	if err := tx2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := size(t, ctx, c, "txq"); n != 1 {
		t.Errorf("size after commit = %d, want 1", n)
	}
}

// A single *pgx.Conn works too.
func TestOnSingleConnection(t *testing.T) {
	ctx, _, db := setup(t, "connq")
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	c := pgmqclient.New(conn)
	id, err := c.Send(ctx, "connq", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Read(ctx, "connq", time.Minute, 1)
	if err != nil || !slices.Equal(ids(msgs), []int64{id}) {
		t.Errorf("Read on a *pgx.Conn = %v, %v", ids(msgs), err)
	}
}

// Bad arguments fail with ErrInvalidArgument before any SQL is sent.
func TestInvalidArgumentsSendNoSQL(t *testing.T) {
	ctx, _, db := setup(t, "args")
	rec := &countingDB{db: db.Pool}
	c := pgmqclient.New(rec)
	ok := json.RawMessage(`{}`)
	cases := map[string]func() error{
		"send invalid JSON":       func() error { _, err := c.Send(ctx, "args", []byte(`{nope`)); return err },
		"send nil payload":        func() error { _, err := c.Send(ctx, "args", nil); return err },
		"send negative delay":     func() error { _, err := c.Send(ctx, "args", ok, pgmqclient.WithDelay(-time.Second)); return err },
		"send huge delay":         func() error { _, err := c.Send(ctx, "args", ok, pgmqclient.WithDelay(math.MaxInt64)); return err },
		"send invalid headers":    func() error { _, err := c.Send(ctx, "args", ok, pgmqclient.WithHeaders([]byte(`{`))); return err },
		"send with batch headers": func() error { _, err := c.Send(ctx, "args", ok, pgmqclient.WithBatchHeaders(nil)); return err },
		"batch empty":             func() error { _, err := c.SendBatch(ctx, "args", nil); return err },
		"batch invalid payload":   func() error { _, err := c.SendBatch(ctx, "args", []json.RawMessage{ok, []byte(`x`)}); return err },
		"batch headers count": func() error {
			_, err := c.SendBatch(ctx, "args", []json.RawMessage{ok}, pgmqclient.WithBatchHeaders([]json.RawMessage{ok, ok}))
			return err
		},
		"batch both header styles": func() error {
			_, err := c.SendBatch(ctx, "args", []json.RawMessage{ok}, pgmqclient.WithHeaders(ok), pgmqclient.WithBatchHeaders([]json.RawMessage{ok}))
			return err
		},
		"batch negative delay": func() error {
			_, err := c.SendBatch(ctx, "args", []json.RawMessage{ok}, pgmqclient.WithDelay(-1))
			return err
		},
		"read qty 0":         func() error { _, err := c.Read(ctx, "args", 0, 0); return err },
		"read negative vt":   func() error { _, err := c.Read(ctx, "args", -time.Second, 1); return err },
		"poll zero max":      func() error { _, err := c.ReadWithPoll(ctx, "args", 0, 1, 0, time.Millisecond); return err },
		"poll zero interval": func() error { _, err := c.ReadWithPoll(ctx, "args", 0, 1, time.Second, 0); return err },
		"poll negative qty":  func() error { _, err := c.ReadWithPoll(ctx, "args", 0, -1, time.Second, time.Millisecond); return err },
		"pop qty 0":          func() error { _, err := c.Pop(ctx, "args", 0); return err },
		"delete no ids":      func() error { _, err := c.DeleteBatch(ctx, "args", nil); return err },
		"archive no ids":     func() error { _, err := c.ArchiveBatch(ctx, "args", []int64{}); return err },
		"set_vt negative":    func() error { _, err := c.SetVisibilityTimeout(ctx, "args", 1, -time.Nanosecond); return err },
	}
	for name, call := range cases {
		err := call()
		if !errors.Is(err, pgmqclient.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
			continue
		}
		var oe *pgmqclient.OpError
		if !errors.As(err, &oe) || oe.Queue != "args" {
			t.Errorf("%s: want *OpError naming the queue, got %v", name, err)
		}
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("%d statements reached the database for refused arguments", n)
	}
}

// Operations on a queue that does not exist say so.
func TestMissingQueue(t *testing.T) {
	ctx, c, _ := setup(t)
	for name, call := range map[string]func() error{
		"send":    func() error { _, err := c.Send(ctx, "ghost", []byte(`{}`)); return err },
		"read":    func() error { _, err := c.Read(ctx, "ghost", 0, 1); return err },
		"pop":     func() error { _, err := c.Pop(ctx, "ghost", 1); return err },
		"delete":  func() error { _, err := c.Delete(ctx, "ghost", 1); return err },
		"archive": func() error { _, err := c.Archive(ctx, "ghost", 1); return err },
		"metrics": func() error { _, err := c.Metrics(ctx, "ghost"); return err },
	} {
		if err := call(); !errors.Is(err, pgmqclient.ErrQueueNotFound) {
			t.Errorf("%s on a missing queue: %v, want ErrQueueNotFound", name, err)
		}
	}
}
