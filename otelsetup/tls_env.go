package otelsetup

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strings"
)

// TLS to the Collector. The SDK reads OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE
// (the CA that signed the Collector's certificate) and the
// CLIENT_CERTIFICATE/CLIENT_KEY pair (this process's certificate, for a
// Collector that requires one) when the exporter is built. A file it cannot
// read or parse, or a certificate without its key, it drops with a log
// line and goes on without: the system's CAs instead of the one meant, no
// client certificate at all. Every export then fails with a TLS error that
// names no variable. checkTLSFiles reads the files the same way first and
// fails with an *EnvError naming the variable and the file, never the
// file's content. TLS files next to a plain-text endpoint (http://, or
// INSECURE=true) would be ignored, so that is an error too.

// checkTLSFiles checks the TLS variables of signal ("METRICS" or
// "TRACES"), the general ones and the signal's own.
func checkTLSFiles(signal string) error {
	for _, s := range []string{"", signal} {
		if err := checkCAFile(otlpVar(s, "CERTIFICATE")); err != nil {
			return err
		}
		if err := checkClientPair(otlpVar(s, "CLIENT_CERTIFICATE"), otlpVar(s, "CLIENT_KEY")); err != nil {
			return err
		}
	}
	return checkTLSNotIgnored(signal)
}

// checkCAFile checks a CERTIFICATE variable: a readable file holding at
// least one PEM certificate.
func checkCAFile(name string) error {
	path, set := lookup(name)
	if !set {
		return nil
	}
	const instead = "the system's CAs, which do not trust a Collector whose certificate a private CA signed"
	b, err := os.ReadFile(path)
	if err != nil {
		return &EnvError{Name: name, Value: path, Supported: "a readable PEM file of CA certificates; this one " + unreadable(err), Instead: instead}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return &EnvError{Name: name, Value: path, Supported: "a PEM file of CA certificates; this one holds none", Instead: instead}
	}
	return nil
}

// checkClientPair checks a CLIENT_CERTIFICATE and CLIENT_KEY pair: both
// or neither, readable, PEM, and a key that matches the certificate. The
// key's content is never part of an error.
func checkClientPair(certVar, keyVar string) error {
	certPath, certSet := lookup(certVar)
	keyPath, keySet := lookup(keyVar)
	const instead = "no client certificate, so a Collector that requires one refuses every export"
	switch {
	case !certSet && !keySet:
		return nil
	case !keySet:
		return &EnvError{Name: keyVar, Value: "", Supported: "the private key (PEM) of the certificate in " + certVar + "; set both or neither", Instead: instead}
	case !certSet:
		return &EnvError{Name: certVar, Value: "", Supported: "the certificate (PEM) of the key in " + keyVar + "; set both or neither", Instead: instead}
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return &EnvError{Name: certVar, Value: certPath, Supported: "a readable PEM certificate file; this one " + unreadable(err), Instead: instead}
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return &EnvError{Name: keyVar, Value: keyPath, Supported: "a readable PEM private key file; this one " + unreadable(err), Instead: instead}
	}
	switch {
	case !hasPEMBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" }):
		return &EnvError{Name: certVar, Value: certPath, Supported: "a PEM certificate file; this one holds no CERTIFICATE block", Instead: instead}
	case !hasPEMBlock(keyPEM, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }):
		return &EnvError{Name: keyVar, Value: keyPath, Supported: "a PEM private key file; this one holds no PRIVATE KEY block", Instead: instead}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		// tls's message is not passed on: keep key material out of errors.
		return &EnvError{Name: keyVar, Value: keyPath,
			Supported: "the private key of the certificate in " + certVar + "; this one does not match it or cannot be parsed", Instead: instead}
	}
	return nil
}

// hasPEMBlock reports whether b holds a PEM block whose type is wanted.
func hasPEMBlock(b []byte, wanted func(string) bool) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if wanted(block.Type) {
			return true
		}
	}
}

// unreadable says why a file could not be read, without its content.
func unreadable(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "may not be read by this process"
	default:
		return "cannot be read"
	}
}

// checkTLSNotIgnored fails when TLS files are set for signal but its
// endpoint is plain text, where the SDK ignores them without a word.
func checkTLSNotIgnored(signal string) error {
	var tlsVar, path string
	for _, suffix := range []string{"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"} {
		if v, set := lookup(effectiveVar(signal, suffix)); set {
			tlsVar, path = effectiveVar(signal, suffix), v
			break
		}
	}
	if tlsVar == "" {
		return nil
	}
	endpointVar := effectiveVar(signal, "ENDPOINT")
	if v, set := lookup(endpointVar); set {
		if u, err := url.Parse(v); err == nil && u.Scheme == "http" {
			return &EnvError{Name: tlsVar, Value: path,
				Supported: "TLS files with an https:// endpoint; " + endpointVar + "=" + v + " is plain text, where they are ignored"}
		}
	}
	insecureVar := effectiveVar(signal, "INSECURE")
	if v, set := lookup(insecureVar); set && strings.EqualFold(strings.TrimSpace(v), "true") {
		return &EnvError{Name: tlsVar, Value: path,
			Supported: "TLS files with TLS on; " + insecureVar + "=" + v + " turns it off, and they are ignored"}
	}
	return nil
}
