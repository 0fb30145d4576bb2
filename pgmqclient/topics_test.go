package pgmqclient_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
)

func TestValidateRoutingKeyAndPattern(t *testing.T) {
	keys := map[string]bool{
		"logs": true, "logs.error": true, "app.user-service.auth": true, "system_events.db.failed": true,
		strings.Repeat("a", 255): true, strings.Repeat("a", 256): false,
		"": false, ".logs": false, "logs.": false, "logs..error": false, "logs.error!": false,
		"logs error": false, "logs.*": false, "logs.#": false, "lögs": false,
	}
	for key, ok := range keys {
		err := pgmqclient.ValidateRoutingKey(key)
		var te *pgmqclient.TopicError
		if ok != (err == nil) || !ok && (!errors.Is(err, pgmqclient.ErrInvalidArgument) || !errors.As(err, &te)) {
			t.Errorf("ValidateRoutingKey(%q) = %v, want ok=%v (a *TopicError otherwise)", key, err, ok)
		}
	}
	patterns := map[string]bool{
		"logs.*": true, "logs.#": true, "*.error": true, "#.error": true, "app.*.#": true, "#": true, "*": true,
		"a*": true, "logs.error": true,
		"": false, ".logs.*": false, "logs.*.": false, "logs..error": false, "logs.**": false,
		"logs.##": false, "logs.*#": false, "logs.#*": false, "logs.error!": false, "logs.?": false,
	}
	for p, ok := range patterns {
		if err := pgmqclient.ValidateTopicPattern(p); ok != (err == nil) || !ok && !errors.Is(err, pgmqclient.ErrInvalidArgument) {
			t.Errorf("ValidateTopicPattern(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// routingCases are (pattern, key, match) as PGMQ routes.
var routingCases = []struct {
	pattern, key string
	match        bool
}{
	{"#", "anything.at.all", true},
	{"#", "x", true},
	{"orders.#", "orders.eu", true},
	{"orders.#", "orders.eu.created", true},
	{"orders.#", "orders", false},
	{"orders.*", "orders.eu", true},
	{"orders.*", "orders.eu.created", false},
	{"*.eu.*", "billing.eu.paid", true},
	{"*.eu.*", "billing.us.paid", false},
	{"#.error", "app.db.error", true},
	{"#.error", "error", false},
	{"logs.error", "logs.error", true},
	{"logs.error", "logs.errors", false},
	{"a*", "ab", true},
	{"a-b.c_d", "a-b.c_d", true},
}

func TestTopicMatches(t *testing.T) {
	for _, tc := range routingCases {
		got, err := pgmqclient.TopicMatches(tc.pattern, tc.key)
		if err != nil || got != tc.match {
			t.Errorf("TopicMatches(%q, %q) = %v, %v; want %v", tc.pattern, tc.key, got, err, tc.match)
		}
	}
	if _, err := pgmqclient.TopicMatches("a..b", "a"); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("invalid pattern: %v", err)
	}
	if _, err := pgmqclient.TopicMatches("a", "a.*"); !errors.Is(err, pgmqclient.ErrInvalidArgument) {
		t.Errorf("invalid key: %v", err)
	}
}

// The server routes as TopicMatches says.
func TestTestRoutingAgreesWithTopicMatches(t *testing.T) {
	ctx, c, _ := setup(t, "route")
	if !caps(t, ctx, c).Has(pgmqclient.FeatureTopics) {
		_, err := c.TestRouting(ctx, "a.b")
		wantUnsupported(t, err, "test routing", pgmqclient.FeatureTopics)
		return
	}
	for _, tc := range routingCases {
		if err := c.BindTopic(ctx, tc.pattern, "route"); err != nil {
			t.Fatal(err)
		}
		got, err := c.TestRouting(ctx, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		want := []pgmqclient.TopicBinding(nil)
		if tc.match {
			want = []pgmqclient.TopicBinding{{Pattern: tc.pattern, Queue: "route"}}
		}
		if !slices.Equal(got, want) {
			t.Errorf("pattern %q, key %q: TestRouting = %v, want %v", tc.pattern, tc.key, got, want)
		}
		if ok, err := c.UnbindTopic(ctx, tc.pattern, "route"); err != nil || !ok {
			t.Fatalf("UnbindTopic(%q) = %v, %v", tc.pattern, ok, err)
		}
	}
}

func TestTopics(t *testing.T) {
	ctx, c, _ := setup(t, "t_all", "t_orders", "t_eu")
	err := c.BindTopic(ctx, "#", "t_all")
	if !caps(t, ctx, c).Has(pgmqclient.FeatureTopics) {
		wantUnsupported(t, err, "bind topic", pgmqclient.FeatureTopics)
		_, err = c.UnbindTopic(ctx, "#", "t_all")
		wantUnsupported(t, err, "unbind topic", pgmqclient.FeatureTopics)
		_, err = c.SendTopic(ctx, "a.b", json.RawMessage(`{}`))
		wantUnsupported(t, err, "send topic", pgmqclient.FeatureTopics)
		_, err = c.SendBatchTopic(ctx, "a.b", []json.RawMessage{[]byte(`{}`)})
		wantUnsupported(t, err, "send batch topic", pgmqclient.FeatureTopics)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []pgmqclient.TopicBinding{{Pattern: "orders.#", Queue: "t_orders"}, {Pattern: "*.eu.*", Queue: "t_eu"}, {Pattern: "*.eu.*", Queue: "t_eu"}} {
		if err := c.BindTopic(ctx, b.Pattern, b.Queue); err != nil {
			t.Fatalf("BindTopic(%q, %q) (twice is fine): %v", b.Pattern, b.Queue, err)
		}
	}
	routes, err := c.TestRouting(ctx, "orders.eu.created")
	want := []pgmqclient.TopicBinding{{Pattern: "#", Queue: "t_all"}, {Pattern: "*.eu.*", Queue: "t_eu"}, {Pattern: "orders.#", Queue: "t_orders"}}
	if err != nil || !slices.Equal(routes, want) {
		t.Fatalf("TestRouting = %v, %v; want %v", routes, err, want)
	}
	n, err := c.SendTopic(ctx, "orders.eu.created", json.RawMessage(`{"id":1}`), pgmqclient.WithHeaders(json.RawMessage(`{"k":"v"}`)))
	if err != nil || n != 3 {
		t.Fatalf("SendTopic = %d, %v; want 3 queues", n, err)
	}
	if n, err := c.SendTopic(ctx, "orders", json.RawMessage(`{"id":2}`), pgmqclient.WithDelay(time.Hour)); err != nil || n != 1 {
		t.Fatalf("SendTopic(orders) = %d, %v; want only the catch-all", n, err)
	}
	sent, err := c.SendBatchTopic(ctx, "billing.eu.paid", []json.RawMessage{[]byte(`{"id":3}`), []byte(`{"id":4}`)},
		pgmqclient.WithGroup("g"))
	if err != nil || len(sent) != 4 || sent[0].Queue != "t_all" || sent[2].Queue != "t_eu" || sent[0].ID >= sent[1].ID {
		t.Fatalf("SendBatchTopic = %+v, %v; want two messages each in t_all and t_eu", sent, err)
	}
	for q, wantN := range map[string]int{"t_all": 3, "t_orders": 1, "t_eu": 3} {
		msgs, err := c.Read(ctx, q, time.Hour, 10)
		if err != nil || len(msgs) != wantN {
			t.Fatalf("Read(%s) = %d messages, %v; want %d visible", q, len(msgs), err, wantN)
		}
		if !jsonEqual(t, msgs[0].Headers, json.RawMessage(`{"k":"v"}`)) || q != "t_orders" && msgs[len(msgs)-1].Group() != "g" {
			t.Errorf("%s: headers %s, group %q", q, msgs[0].Headers, msgs[len(msgs)-1].Group())
		}
	}
	if ok, err := c.UnbindTopic(ctx, "orders.#", "t_orders"); err != nil || !ok {
		t.Fatalf("UnbindTopic = %v, %v", ok, err)
	}
	if ok, err := c.UnbindTopic(ctx, "orders.#", "t_orders"); err != nil || ok {
		t.Fatalf("second UnbindTopic = %v, %v; want false", ok, err)
	}
	if n, err := c.SendTopic(ctx, "nobody.listens", json.RawMessage(`{}`)); err != nil || n != 1 {
		t.Fatalf("SendTopic to the catch-all only = %d, %v", n, err)
	}
	if _, err := c.UnbindTopic(ctx, "#", "t_all"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.SendTopic(ctx, "nobody.listens", json.RawMessage(`{}`)); err != nil || n != 0 {
		t.Fatalf("SendTopic with no match = %d, %v; want 0", n, err)
	}
	if sent, err := c.SendBatchTopic(ctx, "nobody.listens", []json.RawMessage{[]byte(`{}`)}); err != nil || len(sent) != 0 {
		t.Fatalf("SendBatchTopic with no match = %v, %v; want none", sent, err)
	}
}

func TestTopicsRefusedBeforeSQL(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	checks := map[string]error{}
	checks["bad pattern"] = c.BindTopic(ctx, "a.**", "q")
	checks["bad queue"] = c.BindTopic(ctx, "a.*", "q'1")
	_, checks["unbind bad pattern"] = c.UnbindTopic(ctx, ".a", "q")
	_, checks["bad key"] = c.SendTopic(ctx, "a.*", json.RawMessage(`{}`))
	_, checks["delay until"] = c.SendTopic(ctx, "a.b", json.RawMessage(`{}`), pgmqclient.WithDelayUntil(time.Now()))
	_, checks["bad payload"] = c.SendTopic(ctx, "a.b", json.RawMessage(`{`))
	_, checks["no payloads"] = c.SendBatchTopic(ctx, "a.b", nil)
	_, checks["headers count"] = c.SendBatchTopic(ctx, "a.b", []json.RawMessage{[]byte(`1`)}, pgmqclient.WithBatchHeaders(nil))
	_, checks["routing bad key"] = c.TestRouting(ctx, "a..b")
	for name, err := range checks {
		if !errors.Is(err, pgmqclient.ErrInvalidArgument) && !errors.Is(err, pgmqclient.ErrInvalidQueueName) {
			t.Errorf("%s: %v, want a refused argument", name, err)
		}
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("%d statements sent for refused arguments", n)
	}
}
