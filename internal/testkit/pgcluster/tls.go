package pgcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLS turns SSL on for a cluster and lets clients in only over SSL with a
// client certificate: pg_hba.conf holds `hostssl ... cert` for 127.0.0.1
// and `hostnossl ... reject`, so nothing can fall back to plain text over
// TCP. The cluster's own administration (Start's readiness check, URL,
// pg_basebackup) goes through a Unix socket in the cluster's directory.
type TLS struct {
	// CA signs the server certificate and verifies client certificates;
	// nil makes one.
	CA *CA
	// Names are the server certificate's subject alternative names (DNS
	// names or IP addresses); empty means "localhost" alone, so a client
	// that connects to 127.0.0.1 with sslmode=verify-full sees a hostname
	// mismatch.
	Names []string
}

// CA is a test certificate authority writing PEM files into a directory of
// its own, removed at the end of the test.
type CA struct {
	// CertFile is the CA certificate (sslrootcert, ssl_ca_file).
	CertFile string

	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// KeyPair is a certificate and its private key, as PEM files.
type KeyPair struct {
	CertFile string
	KeyFile  string
}

// NewCA makes a certificate authority valid for a day.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-ca-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the user postgres reads the server's files
		tb.Fatal(err)
	}
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "pgcluster test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{dir: dir, cert: cert, key: key, CertFile: filepath.Join(dir, "ca.crt")}
	writePEM(tb, ca.CertFile, "CERTIFICATE", der, 0o644)
	return ca
}

// Server issues a server certificate for names (DNS names or IP
// addresses), its files named after base.
func (ca *CA) Server(tb testing.TB, base string, names ...string) KeyPair {
	tb.Helper()
	tmpl := ca.template(tb, names[0], x509.ExtKeyUsageServerAuth)
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return ca.issue(tb, base, tmpl)
}

// Client issues a client certificate whose common name is user, which
// the `cert` authentication method maps to the database role of that name.
func (ca *CA) Client(tb testing.TB, user string) KeyPair {
	tb.Helper()
	return ca.issue(tb, "client-"+url.PathEscape(user), ca.template(tb, user, x509.ExtKeyUsageClientAuth))
}

func (ca *CA) template(tb testing.TB, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	tb.Helper()
	return &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func (ca *CA) issue(tb testing.TB, base string, tmpl *x509.Certificate) KeyPair {
	tb.Helper()
	key := newKey(tb)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	kp := KeyPair{CertFile: filepath.Join(ca.dir, base+".crt"), KeyFile: filepath.Join(ca.dir, base+".key")}
	writePEM(tb, kp.CertFile, "CERTIFICATE", der, 0o644)
	writePEM(tb, kp.KeyFile, "PRIVATE KEY", keyDER, 0o600)
	return kp
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func writePEM(tb testing.TB, path, typ string, der []byte, mode os.FileMode) {
	tb.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		tb.Fatal(err)
	}
}

// configureTLS issues the server certificate, turns ssl on and writes a
// pg_hba.conf that admits TCP clients only over SSL with a certificate.
func (c *Cluster) configureTLS(tb testing.TB, t *TLS) map[string]string {
	tb.Helper()
	if t.CA == nil {
		t.CA = NewCA(tb)
	}
	names := t.Names
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	server := t.CA.Server(tb, fmt.Sprintf("server-%d", c.Port), names...)
	c.chown(tb, server.KeyFile) // PostgreSQL refuses a key others can read or it does not own
	c.ca = t.CA
	hba := "# pgcluster TLS: TCP only over SSL, authenticated by client certificate\n" +
		"local all all trust\n" +
		"local replication all trust\n" +
		"hostssl all all 127.0.0.1/32 cert\n" +
		"hostnossl all all 127.0.0.1/32 reject\n" +
		"host all all ::1/128 reject\n"
	if err := os.WriteFile(filepath.Join(c.Dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		tb.Fatal(err)
	}
	c.chown(tb, filepath.Join(c.Dir, "pg_hba.conf"))
	return map[string]string{
		"ssl":           "on",
		"ssl_cert_file": server.CertFile,
		"ssl_key_file":  server.KeyFile,
		"ssl_ca_file":   t.CA.CertFile,
	}
}

// CA returns the certificate authority of a cluster started with TLS, or
// nil.
func (c *Cluster) CA() *CA { return c.ca }

// TLSURL returns a URL that connects to database db (postgres when empty)
// as user over TCP to host (for example "localhost" or "127.0.0.1") with
// sslmode=verify-full, the cluster's CA and client's certificate.
func (c *Cluster) TLSURL(db, user, host string, client KeyPair) string {
	if db == "" {
		db = "postgres"
	}
	q := url.Values{}
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", c.ca.CertFile)
	q.Set("sslcert", client.CertFile)
	q.Set("sslkey", client.KeyFile)
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: net.JoinHostPort(host, fmt.Sprint(c.Port)), Path: "/" + db, RawQuery: q.Encode()}
	return u.String()
}

// ClientEncrypted issues a client certificate for user whose RSA key file
// is encrypted with password in the legacy PEM form, the only encrypted
// form pgx reads (sslpassword).
func (ca *CA) ClientEncrypted(tb testing.TB, user, password string) KeyPair {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, ca.template(tb, user, x509.ExtKeyUsageClientAuth), ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	//lint:ignore SA1019 legacy PEM encryption is what pgx's sslpassword decrypts
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte(password), x509.PEMCipherAES256)
	if err != nil {
		tb.Fatal(err)
	}
	base := "client-encrypted-" + url.PathEscape(user)
	kp := KeyPair{CertFile: filepath.Join(ca.dir, base+".crt"), KeyFile: filepath.Join(ca.dir, base+".key")}
	writePEM(tb, kp.CertFile, "CERTIFICATE", der, 0o644)
	if err := os.WriteFile(kp.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	return kp
}
