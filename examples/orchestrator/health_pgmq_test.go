package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// databaseState is the database part of /healthz, with the fields that
// tell "down" from "up without PGMQ".
type databaseState struct {
	Healthy   bool   `json:"healthy"`
	Reachable bool   `json:"reachable"`
	PGMQ      string `json:"pgmq"`
	Error     string `json:"error"`
}

func getDatabase(t *testing.T, url string) (int, databaseState) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var rep struct {
		Database databaseState `json:"database"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return resp.StatusCode, rep.Database
}

// A plain PostgreSQL without PGMQ is "database up, PGMQ missing" on
// /healthz, with the way to install it; a database that is down is
// "reachable": false; a healthy one says PGMQ is installed.
func TestHealthTellsPGMQMissingFromDatabaseDown(t *testing.T) {
	db := pgmqtest.New(t)
	db.RemovePGMQ(t)

	r := start(t, testConfig(db.URL))
	var (
		code int
		got  databaseState
	)
	waitFor(t, 30*time.Second, "a health report after the first sample", func() bool {
		code, got = getDatabase(t, r.url)
		return got.Reachable
	})
	if code != 503 || got.Healthy || got.PGMQ != "missing" ||
		!strings.Contains(got.Error, "database up, PGMQ missing") || !strings.Contains(got.Error, "CREATE EXTENSION pgmq") {
		t.Fatalf("status %d, database %+v: want 503, reachable, pgmq missing, with the install hint", code, got)
	}
	_ = r.stop(t) // its result is not what this test is about

	down := start(t, testConfig("postgres://postgres@"+closedPort(t)+"/postgres?connect_timeout=5"))
	code, got = getDatabase(t, down.url)
	if code != 503 || got.Reachable || got.PGMQ != "unknown" {
		t.Fatalf("database down: status %d, database %+v: want 503, unreachable, pgmq unknown", code, got)
	}

	healthy := pgmqtest.New(t)
	up := start(t, testConfig(healthy.URL))
	waitFor(t, 30*time.Second, "a healthy report", func() bool {
		code, got = getDatabase(t, up.url)
		return got.Healthy
	})
	if code != 200 || !got.Reachable || got.PGMQ != "installed" {
		t.Fatalf("healthy: status %d, database %+v", code, got)
	}
}
