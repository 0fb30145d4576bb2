package pgmqreceiver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// parseDSN parses a connection string the way pgx (and libpq) do. Its
// errors never hold the password: pgx redacts it.
func parseDSN(dsn string) (*pgxpool.Config, error) {
	return pgxpool.ParseConfig(dsn)
}

// sslParam finds a libpq TLS parameter in a URL query or a keyword/value
// connection string.
var sslParam = regexp.MustCompile(`(?i)(^|[\s?&])ssl(mode|rootcert|cert|key|password|sni|negotiation|crl|crldir)\s*=`)

// hasSSLParams reports whether dsn sets any TLS parameter.
func hasSSLParams(dsn string) bool { return sslParam.MatchString(dsn) }

// connConfig is the sampler's connection config for db: its DSN, with the
// tls block's settings in place of the DSN's when given.
func (db *DatabaseConfig) connConfig(ctx context.Context) (*pgxpool.Config, error) {
	pc, err := parseDSN(string(db.DSN))
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	if db.TLS == nil {
		return pc, nil
	}
	base, err := db.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cc := pc.ConnConfig
	cc.TLSConfig = tlsFor(base, cc.Host)
	// The DSN's fallbacks are its other hosts and, with sslmode=prefer or
	// allow, the same hosts without TLS: keep each other host once, with
	// the tls block's settings.
	seen := map[string]bool{net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))): true}
	var fallbacks []*pgconn.FallbackConfig
	for _, fb := range cc.Fallbacks {
		key := net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port)))
		if seen[key] {
			continue
		}
		seen[key] = true
		fb.TLSConfig = tlsFor(base, fb.Host)
		fallbacks = append(fallbacks, fb)
	}
	cc.Fallbacks = fallbacks
	return pc, nil
}

// tlsFor is base for host: verified against host's name unless the
// settings name another or skip verification. Nil (insecure: true) stays
// nil: no TLS.
func tlsFor(base *tls.Config, host string) *tls.Config {
	if base == nil {
		return nil
	}
	c := base.Clone()
	if c.ServerName == "" && !c.InsecureSkipVerify {
		c.ServerName = host
	}
	return c
}
