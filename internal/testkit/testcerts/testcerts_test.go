package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// The certificates verify as a TLS peer would verify them: the server's
// for 127.0.0.1 against its CA and not against another, the client's for
// client authentication.
func TestCertificatesVerify(t *testing.T) {
	ca, other := NewCA(t, "test"), NewCA(t, "other")
	server, client := ca.Server(t, "collector"), ca.Client(t, "app")
	pool := func(c *CA) *x509.CertPool {
		b, err := os.ReadFile(c.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			t.Fatal("no certificate in the CA file")
		}
		return p
	}
	leaf := func(p Pair) *x509.Certificate {
		kp, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := leaf(server).Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("server certificate against its CA: %v", err)
	}
	if _, err := leaf(server).Verify(x509.VerifyOptions{Roots: pool(other), DNSName: "127.0.0.1"}); err == nil {
		t.Error("server certificate verified against another CA")
	}
	if _, err := leaf(client).Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate against its CA: %v", err)
	}
}
