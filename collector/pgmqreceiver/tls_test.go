package pgmqreceiver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/pgmqotel/pgmqotel/internal/testkit/pgcluster"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1.
type testCA struct {
	caFile             string // the CA's certificate, PEM
	serverCert, server []byte // the server's certificate and key, PEM
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pgmqreceiver test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	c := testCA{caFile: filepath.Join(t.TempDir(), "ca.pem"),
		serverCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		server:     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER})}
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// enableTLS gives the cluster the CA's server certificate and turns TLS
// on (a reload suffices). The files go in the data directory, owned by
// its owner, the key readable by it alone, as PostgreSQL requires.
func enableTLS(t *testing.T, c *pgcluster.Cluster, ca testCA) {
	t.Helper()
	st, err := os.Stat(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	owner := st.Sys().(*syscall.Stat_t)
	for name, b := range map[string][]byte{"server.crt": ca.serverCert, "server.key": ca.server} {
		p := filepath.Join(c.Dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, int(owner.Uid), int(owner.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{`ALTER SYSTEM SET ssl = on`, `ALTER SYSTEM SET ssl_cert_file = 'server.crt'`,
		`ALTER SYSTEM SET ssl_key_file = 'server.key'`, `SELECT pg_reload_conf()`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var on string
	deadline := time.Now().Add(30 * time.Second)
	for on != "on" {
		if time.Now().After(deadline) {
			t.Fatalf("ssl = %q after the reload", on)
		}
		_ = conn.QueryRow(ctx, `SHOW ssl`).Scan(&on)
		time.Sleep(20 * time.Millisecond)
	}
}

// samplerUsesTLS reports whether the sampler's session on the database at
// dbURL is encrypted, as the server sees it.
func samplerUsesTLS(t *testing.T, dbURL string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL+"&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ssl bool
	if err := conn.QueryRow(ctx, `SELECT s.ssl FROM pg_stat_ssl AS s JOIN pg_stat_activity AS a USING (pid)
		WHERE a.application_name = $1 AND a.datname = current_database()`, queuesampler.AppName).Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	return ssl
}

// TLS as documented: a tls block verifies the server against its ca_file
// (the DSN's host as server name) and requires TLS; the DSN's own
// parameters do the same without a block; a server certificate the CA
// did not sign is refused, counted and reported, never sampled in clear.
func TestTLS(t *testing.T) {
	cluster := pgcluster.Start(t, pgcluster.Options{})
	db := pgmqtest.NewAt(t, cluster.URL(""))
	if err := pgmqclient.New(db.Pool).CreateQueue(context.Background(), "orders"); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	enableTLS(t, cluster, ca)
	plain := strings.TrimSuffix(db.URL, "?sslmode=disable") // the DSN without TLS parameters
	if plain == db.URL {
		t.Fatalf("pgcluster's URL %s no longer ends with sslmode=disable", db.URL)
	}
	orders := append(serverAttrs(t, db.URL), str("messaging.destination.name", "orders"), str("pgmq.message.state", "visible"))

	for _, tc := range []struct {
		name string
		db   DatabaseConfig
	}{
		{"tls block", DatabaseConfig{DSN: configopaque.String(plain), TLS: &configtls.ClientConfig{Config: configtls.Config{CAFile: ca.caFile}}}},
		{"dsn parameters", DatabaseConfig{DSN: configopaque.String(plain + "?sslmode=verify-full&sslrootcert=" + ca.caFile)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Databases = []DatabaseConfig{tc.db}
			sink, stop := startReceiver(t, cfg)
			lastCollection(t, sink, "the depth of orders", func(c collection) bool { _, ok := c.value("pgmq.queue.depth", orders...); return ok })
			if !samplerUsesTLS(t, db.URL) {
				t.Fatal("the sampler's session is not encrypted")
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("another CA", func(t *testing.T) {
		other := newTestCA(t)
		cfg := testConfig()
		cfg.Databases = []DatabaseConfig{{DSN: configopaque.String(plain), TLS: &configtls.ClientConfig{Config: configtls.Config{CAFile: other.caFile}}}}
		sink, _ := startReceiver(t, cfg)
		got := lastCollection(t, sink, "a refused connection", func(c collection) bool {
			n, ok := c.value("pgmq.sampler.errors", append(serverAttrs(t, db.URL), str("error.type", "connection"))...)
			return ok && n >= 1
		})
		if _, ok := got.value("pgmq.queue.depth", orders...); ok {
			t.Fatal("a depth through an unverified connection")
		}
	})
}

// A tls block replaces the DSN's TLS: required (no plaintext fallback),
// verified against each host's own name, or none with insecure: true.
func TestTLSBlockConnConfig(t *testing.T) {
	for _, tc := range []struct {
		name, dsn string
		tls       configtls.ClientConfig
		hosts     []string // the hosts tried, in order, each with TLS unless insecure
		insecure  bool
	}{
		{"prefer becomes required", "postgres://u@db.example:5432/d", configtls.ClientConfig{}, []string{"db.example"}, false},
		{"several hosts", "postgres://u@a.example:5432,b.example:5433/d", configtls.ClientConfig{}, []string{"a.example", "b.example"}, false},
		{"server name override", "postgres://u@10.0.0.1:5432/d", configtls.ClientConfig{ServerName: "db.internal"}, []string{"db.internal"}, false},
		{"insecure", "postgres://u@db.example:5432/d", configtls.ClientConfig{Insecure: true}, []string{"db.example"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := DatabaseConfig{DSN: configopaque.String(tc.dsn), TLS: &tc.tls}
			pc, err := db.connConfig(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			cc := pc.ConnConfig
			tried := []*struct {
				host string
				tls  bool
				name string
			}{{cc.Host, cc.TLSConfig != nil, ""}}
			if cc.TLSConfig != nil {
				tried[0].name = cc.TLSConfig.ServerName
			}
			for _, fb := range cc.Fallbacks {
				e := &struct {
					host string
					tls  bool
					name string
				}{fb.Host, fb.TLSConfig != nil, ""}
				if fb.TLSConfig != nil {
					e.name = fb.TLSConfig.ServerName
				}
				tried = append(tried, e)
			}
			if len(tried) != len(tc.hosts) {
				t.Fatalf("%d connection attempts, want %d", len(tried), len(tc.hosts))
			}
			for i, want := range tc.hosts {
				got := tried[i]
				if got.tls == tc.insecure || (!tc.insecure && got.name != want) {
					t.Errorf("attempt %d: host %s, TLS %v, server name %q; want TLS %v for %q", i, got.host, got.tls, got.name, !tc.insecure, want)
				}
			}
		})
	}
}
