package pgmqclient_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

func TestSendDelayUntil(t *testing.T) {
	ctx, c, _ := setup(t, "later")
	at := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	id, err := c.Send(ctx, "later", json.RawMessage(`{"a":1}`), pgmqclient.WithDelayUntil(at))
	if !caps(t, ctx, c).Has(pgmqclient.FeatureSendAt) {
		wantUnsupported(t, err, "send", pgmqclient.FeatureSendAt)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.SendBatch(ctx, "later", []json.RawMessage{[]byte(`1`), []byte(`2`)},
		pgmqclient.WithDelayUntil(at), pgmqclient.WithHeaders(json.RawMessage(`{"h":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	past, err := c.Send(ctx, "later", json.RawMessage(`{"a":2}`), pgmqclient.WithDelayUntil(time.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Read(ctx, "later", time.Hour, 10)
	if err != nil || !slices.Equal(ids(got), []int64{past}) {
		t.Fatalf("Read = %v, %v; want only the message due in the past (%d), not %d or %v", ids(got), err, past, id, batch)
	}
	if n := size(t, ctx, c, "later"); n != 4 {
		t.Errorf("queue size = %d, want 4 (three still delayed)", n)
	}
}

func TestSendDelayUntilExactTime(t *testing.T) {
	ctx, c, db := setup(t, "exact")
	if !caps(t, ctx, c).Has(pgmqclient.FeatureSendAt) {
		t.Skip("no send with a timestamp delay here; TestSendDelayUntil checks the error")
	}
	at := time.Now().Add(90*time.Minute + 123456*time.Microsecond).Truncate(time.Microsecond)
	id, err := c.Send(ctx, "exact", json.RawMessage(`{}`), pgmqclient.WithDelayUntil(at))
	if err != nil {
		t.Fatal(err)
	}
	var vt time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT vt FROM pgmq.q_exact WHERE msg_id = $1`, id).Scan(&vt); err != nil {
		t.Fatal(err)
	}
	if !vt.Equal(at) {
		t.Errorf("vt = %v, want exactly %v", vt, at)
	}
}

func TestSendFormsRefusedBeforeSQL(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	at := time.Now().Add(time.Hour)
	cases := map[string][]pgmqclient.SendOption{
		"delay and delay until":   {pgmqclient.WithDelay(time.Second), pgmqclient.WithDelayUntil(at)},
		"empty group":             {pgmqclient.WithGroup("")},
		"group with array header": {pgmqclient.WithHeaders(json.RawMessage(`[1]`)), pgmqclient.WithGroup("g")},
	}
	for name, opts := range cases {
		if _, err := c.Send(ctx, "q", json.RawMessage(`{}`), opts...); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
			t.Errorf("%s: Send err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := c.SendBatch(ctx, "q", []json.RawMessage{[]byte(`{}`)},
		pgmqclient.WithBatchHeaders([]json.RawMessage{[]byte(`"x"`)}), pgmqclient.WithGroup("g")); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("group with a string header: SendBatch err = %v, want ErrInvalidArgument", err)
	}
	for _, cond := range []string{`[1]`, `"x"`, `null`, `{`} {
		if _, err := c.Read(ctx, "q", 0, 1, pgmqclient.WithCondition(json.RawMessage(cond))); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
			t.Errorf("condition %s: Read err = %v, want ErrInvalidArgument", cond, err)
		}
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("%d statements sent for refused arguments", n)
	}
}

func TestSendWithGroup(t *testing.T) {
	ctx, c, _ := setup(t, "grp")
	a, err := c.Send(ctx, "grp", json.RawMessage(`{}`), pgmqclient.WithGroup("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Send(ctx, "grp", json.RawMessage(`{}`), pgmqclient.WithHeaders(json.RawMessage(`{"k":"v"}`)), pgmqclient.WithGroup("b"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.SendBatch(ctx, "grp", []json.RawMessage{[]byte(`1`), []byte(`2`)},
		pgmqclient.WithBatchHeaders([]json.RawMessage{nil, []byte(`{"n":2}`)}), pgmqclient.WithGroup("c"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Read(ctx, "grp", time.Hour, 10)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("Read = %v, %v", msgs, err)
	}
	want := map[int64]string{
		a:        `{"x-pgmq-group":"a"}`,
		b:        `{"k":"v","x-pgmq-group":"b"}`,
		batch[0]: `{"x-pgmq-group":"c"}`,
		batch[1]: `{"n":2,"x-pgmq-group":"c"}`,
	}
	for _, m := range msgs {
		if !jsonEqual(t, m.Headers, json.RawMessage(want[m.ID])) {
			t.Errorf("message %d headers = %s, want %s", m.ID, m.Headers, want[m.ID])
		}
	}
	if g := msgs[1].Group(); g != "b" {
		t.Errorf("Group() = %q, want b", g)
	}
	if g := (pgmqclient.Message{}).Group(); g != "" {
		t.Errorf("Group() of a message without headers = %q", g)
	}
}

func TestReadWithCondition(t *testing.T) {
	ctx, c, _ := setup(t, "cond")
	var want []int64
	for i, p := range []string{`{"kind":"a","n":1}`, `{"kind":"b"}`, `{"kind":"a","n":2}`, `{"other":true}`} {
		id, err := c.Send(ctx, "cond", json.RawMessage(p))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 || i == 2 {
			want = append(want, id)
		}
	}
	cond := pgmqclient.WithCondition(json.RawMessage(`{"kind":"a"}`))
	got, err := c.Read(ctx, "cond", time.Hour, 10, cond)
	if !caps(t, ctx, c).Has(pgmqclient.FeatureReadConditional) {
		wantUnsupported(t, err, "read", pgmqclient.FeatureReadConditional)
		return
	}
	if err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("Read with condition = %v, %v; want %v", ids(got), err, want)
	}
	// Nothing left that matches: with poll, the condition holds too.
	got, err = c.ReadWithPoll(ctx, "cond", time.Hour, 10, time.Second, 50*time.Millisecond, cond)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadWithPoll with condition = %v, %v; want none", ids(got), err)
	}
	// {} and nil read everything.
	got, err = c.Read(ctx, "cond", time.Hour, 10, pgmqclient.WithCondition(json.RawMessage(`{}`)), nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read with {} = %v, %v; want the two others", ids(got), err)
	}
}

func TestSetVisibilityForms(t *testing.T) {
	ctx, c, _ := setup(t, "vis")
	sent := sendN(t, ctx, c, "vis", 3)
	cs := caps(t, ctx, c)

	got, err := c.SetVisibilityTimeoutBatch(ctx, "vis", []int64{sent[2], sent[0], 999}, time.Hour)
	if !cs.Has(pgmqclient.FeatureSetVTBatch) {
		wantUnsupported(t, err, "set visibility timeout batch", pgmqclient.FeatureSetVTBatch)
	} else {
		if err != nil || !slices.Equal(ids(got), []int64{sent[0], sent[2]}) {
			t.Fatalf("SetVisibilityTimeoutBatch = %v, %v", ids(got), err)
		}
		if vis, err := c.Read(ctx, "vis", time.Hour, 10); err != nil || !slices.Equal(ids(vis), sent[1:2]) {
			t.Fatalf("Read after hiding two = %v, %v", ids(vis), err)
		}
	}

	at := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	m, err := c.SetVisibleAt(ctx, "vis", sent[1], at)
	if !cs.Has(pgmqclient.FeatureSetVTAt) {
		wantUnsupported(t, err, "set visible at", pgmqclient.FeatureSetVTAt)
	} else {
		if err != nil || m.ID != sent[1] || !m.VisibleAt.Equal(at) {
			t.Fatalf("SetVisibleAt = %+v, %v; want vt %v", m, err, at)
		}
		if _, err := c.SetVisibleAt(ctx, "vis", 999, at); !errors.Is(err, pgmqclient.ErrMessageNotFound) {
			t.Fatalf("SetVisibleAt of a missing message: %v", err)
		}
	}

	got, err = c.SetVisibleAtBatch(ctx, "vis", sent, at)
	if !cs.Has(pgmqclient.FeatureSetVTBatchAt) {
		wantUnsupported(t, err, "set visible at batch", pgmqclient.FeatureSetVTBatchAt)
		return
	}
	if err != nil || !slices.Equal(ids(got), sent) {
		t.Fatalf("SetVisibleAtBatch = %v, %v", ids(got), err)
	}
	for _, m := range got {
		if !m.VisibleAt.Equal(at) {
			t.Errorf("message %d vt = %v, want %v", m.ID, m.VisibleAt, at)
		}
	}
	if vis, err := c.Read(ctx, "vis", time.Hour, 10); err != nil || !slices.Equal(ids(vis), sent) {
		t.Fatalf("Read after making all visible = %v, %v", ids(vis), err)
	}
}

func TestSetVisibilityFormsRefusedBeforeSQL(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	if _, err := c.SetVisibilityTimeoutBatch(ctx, "q", nil, time.Second); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("no ids: %v", err)
	}
	if _, err := c.SetVisibilityTimeoutBatch(ctx, "q", []int64{1}, -time.Second); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("negative timeout: %v", err)
	}
	if _, err := c.SetVisibleAt(ctx, "q", 1, time.Time{}); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("zero time: %v", err)
	}
	if _, err := c.SetVisibleAtBatch(ctx, "q$1", []int64{1}, time.Now()); !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
		t.Errorf("bad name: %v", err)
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("%d statements sent for refused arguments", n)
	}
}
