package otelsetup

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// keySecrets returns every base64 line of a PEM key file, each a secret:
// no output may hold any piece of the key.
func keySecrets(t *testing.T, name, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		if len(line) < 16 || strings.HasPrefix(line, "-----") || strings.Contains(line, ":") {
			continue
		}
		out[fmt.Sprintf("%s line %d", name, i+1)] = line
	}
	if len(out) == 0 {
		t.Fatalf("%s: no key material found", path)
	}
	return out
}

// withParams adds query parameters to a connection URL.
func withParams(t *testing.T, dsn string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// The queue sampler's and the depth sampler's own outputs (errors handed
// to OnError, samples, failures, lease reads) and the TLS setup's (parse
// errors, refused handshakes) never hold the DSN password, the client key's
// pass phrase (sslpassword) or any piece of a key file, against a
// PostgreSQL that demands client certificates: with a good key, under a
// mismatched name, with a wrong pass phrase, with a key file that is not a
// key, with the server gone.
func TestSecretsNeverLeakFromSamplersOrTLS(t *testing.T) {
	o := watchOutputs(t)
	extra := map[string]string{"sslpassword": "TLS-Pass-Phrase-77"}
	cluster := pgcluster.Start(t, pgcluster.Options{TLS: &pgcluster.TLS{}})
	db := pgmqtest.NewAt(t, cluster.URL(""))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "secret_q"); err != nil {
		t.Fatal(err)
	}
	client := cluster.CA().ClientEncrypted(t, "postgres", extra["sslpassword"])
	for k, v := range keySecrets(t, "encrypted key", client.KeyFile) {
		extra[k] = v
	}
	// A file in the key's place that is no key: its content is a secret.
	notAKey := filepath.Join(t.TempDir(), "not-a-key.pem")
	const notAKeyContent = "Q0xJRU5ULUtFWS1NQVRFUklBTC1ET05ULVBSSU5U"
	if err := os.WriteFile(notAKey, []byte("-----BEGIN PRIVATE KEY-----\n"+notAKeyContent+"!\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra["a key file's content"] = notAKeyContent

	// The DSN password travels too (the cert method never asks for it).
	dsn := func(host string, kv ...string) string {
		u, _ := url.Parse(withParams(t, cluster.TLSURL(db.Name, "postgres", host, client), append([]string{"sslpassword", extra["sslpassword"]}, kv...)...))
		u.User = url.UserPassword("postgres", secrets["DSN password"])
		return u.String()
	}

	// Configurations that cannot even be parsed.
	for name, s := range map[string]string{
		"wrong pass phrase": dsn("localhost", "sslpassword", "not-the-pass-phrase"),
		"not a key":         dsn("localhost", "sslkey", notAKey),
	} {
		if _, err := pgxpool.ParseConfig(s); err == nil {
			t.Errorf("%s: parsed", name)
		} else {
			o.add("parse error", err.Error())
		}
	}

	samplerRun := func(name string, cfg *pgxpool.Config, collections int) *queuesampler.Sampler {
		s, err := queuesampler.New(queuesampler.Config{Conn: cfg, MinInterval: -1, SampleTimeout: time.Second,
			OnError: func(err error) { o.add("OnError", err.Error()) }})
		if err != nil {
			o.add("New error", err.Error())
			t.Fatalf("%s: %v", name, err)
		}
		for range collections {
			sample, err := s.Get(ctx)
			if err != nil {
				o.add("Get error", err.Error())
				continue
			}
			o.add("sample", fmt.Sprintf("%+v", sample))
			if sample.Err != nil {
				o.add("sample error", sample.Err.Error())
			}
			for _, q := range sample.Queues {
				if q.Err != nil {
					o.add("queue error", q.Err.Error())
				}
			}
		}
		o.add("failures", fmt.Sprintf("%+v %+v %+v", s.Failures(), s.Stats(), s.Server()))
		return s
	}
	closeSampler := func(s *queuesampler.Sampler) {
		if err := s.Close(); err != nil {
			o.add("Close error", err.Error())
		}
	}

	good, err := pgxpool.ParseConfig(dsn("localhost"))
	if err != nil {
		t.Fatalf("the good configuration: %v", err)
	}
	bad, err := pgxpool.ParseConfig(dsn("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	s := samplerRun("good", good, 2)
	if last := s.Last(); last == nil || last.Err != nil || len(last.Queues) != 1 {
		t.Fatalf("sampling over TLS with the encrypted key: %+v", last)
	}
	mismatched := samplerRun("mismatched name", bad, 2)
	closeSampler(mismatched)

	// The instrumentation on top: collections and snapshots.
	pool, err := pgxpool.NewWithConfig(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	reader := sdkmetric.NewManualReader()
	m, err := otelmetrics.New(otelmetrics.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))), otelmetrics.WithPool("", pool),
		otelmetrics.WithQueueSampler(queuesampler.Config{Conn: bad, MinInterval: -1, SampleTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	recordCollection(t, o, reader)
	recordSnapshot(t, o, m)

	// The depth sampler alone, on a session the server ends under it.
	conn, err := pgx.ConnectConfig(ctx, good.ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	depth, err := queuedepth.New(queuedepth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "SELECT pg_terminate_backend($1)", conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	if _, err := depth.Sample(ctx, conn); err == nil {
		t.Error("a sample on a terminated session succeeded")
	} else {
		o.add("depth error", err.Error())
	}

	// The lease, read through the sampler's package.
	if l, err := queuesampler.LeaseHolder(ctx, conn, s.ElectionKey()); err != nil {
		o.add("lease error", err.Error())
	} else {
		o.add("lease", fmt.Sprintf("%+v", l))
	}

	// The server gone.
	cluster.Stop(t, "immediate")
	for range 2 {
		if sample, err := s.Get(ctx); err == nil && sample.Err != nil {
			o.add("sample error", sample.Err.Error())
		}
	}
	recordCollection(t, o, reader)
	recordSnapshot(t, o, m)
	closeSampler(s)
	if err := m.Close(); err != nil {
		o.add("Close error", err.Error())
	}
	b, _ := json.Marshal(m.Snapshot(ctx))
	o.add("snapshot", string(b))
	cluster.Start(t) // for the test database's removal

	// The outputs hold the failures, so the check is not vacuous.
	for where, substr := range map[string]string{
		"parse error":  "sslkey",
		"OnError":      "x509",
		"sample error": "connect",
		"depth error":  "",
	} {
		if o.count(where, substr) == 0 {
			t.Errorf("no %s output mentions %q", where, substr)
		}
	}
	o.checkAlso(t, extra)
}
