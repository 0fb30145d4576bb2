package pgmqclient

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ServerAddress is the PostgreSQL server a client's DB connects to, as its
// configuration names it. Instrumentation reports it as server.address and
// server.port.
type ServerAddress struct {
	// Host is a host name, an IP address or, for a Unix socket, the
	// socket's directory.
	Host string
	// Port is the TCP port (for a Unix socket, the number in its name).
	Port uint16
}

// serverInfo is a Client's ServerAddress, read once; ok is false when it
// cannot be known.
type serverInfo struct {
	addr ServerAddress
	ok   bool
}

// serverCache holds a Client's serverInfo once read.
type serverCache struct{ p atomic.Pointer[serverInfo] }

// Server returns the address of the PostgreSQL server the client's DB
// connects to, read from its configuration at the first call and kept: the
// configured host and port of a *pgxpool.Pool, a *pgx.Conn, a
// *pgxpool.Conn or a transaction of either (pgx.Tx). Behind a pooler it is
// the pooler's address. ok is false when the address cannot be known: a DB
// of another type, or a configuration naming several hosts (which one a
// call reaches is not known).
func (c *Client) Server() (addr ServerAddress, ok bool) {
	s := c.server()
	return s.addr, s.ok
}

// server returns the kept serverInfo, reading it at the first call.
func (c *Client) server() *serverInfo {
	if s := c.srv.p.Load(); s != nil {
		return s
	}
	s := serverOf(c.db)
	c.srv.p.CompareAndSwap(nil, s)
	return c.srv.p.Load()
}

// configOf returns the configuration db connects with, nil for a DB of
// another type: a *pgxpool.Pool, a *pgx.Conn, a *pgxpool.Conn or a
// transaction of either.
func configOf(db DB) *pgx.ConnConfig {
	switch d := db.(type) {
	case *pgxpool.Pool:
		return d.Config().ConnConfig
	case *pgx.Conn:
		return d.Config()
	case interface{ Conn() *pgx.Conn }: // pgx.Tx, *pgxpool.Conn, *pgxpool.Tx
		if conn := d.Conn(); conn != nil {
			return conn.Config()
		}
	}
	return nil
}

// serverOf reads db's server address from its configuration.
func serverOf(db DB) *serverInfo {
	cc := configOf(db)
	if cc == nil || cc.Host == "" {
		return &serverInfo{}
	}
	for _, f := range cc.Fallbacks {
		// pgx lists TLS and plain-text attempts at the same address as
		// fallbacks (sslmode=prefer); only other addresses make it unknown.
		if f.Host != cc.Host || f.Port != cc.Port {
			return &serverInfo{}
		}
	}
	return &serverInfo{addr: ServerAddress{Host: cc.Host, Port: cc.Port}, ok: true}
}

// String returns "host:port", or for a Unix socket the socket's path
// followed by "(Unix socket)".
func (a ServerAddress) String() string {
	if strings.HasPrefix(a.Host, "/") {
		return fmt.Sprintf("%s/.s.PGSQL.%d (Unix socket)", strings.TrimSuffix(a.Host, "/"), a.Port)
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

// describeDB names db's database for messages, from its configuration:
// `database "orders" (user "app") on 10.0.0.5:5432`; the server is left
// out when it cannot be known (several hosts), and the whole is "this
// database" for a DB whose configuration cannot be read. Never a password.
func describeDB(db DB) string {
	cc := configOf(db)
	if cc == nil {
		return "this database"
	}
	s := fmt.Sprintf("database %q (user %q)", cc.Database, cc.User)
	if srv := serverOf(db); srv.ok {
		s += " on " + srv.addr.String()
	}
	return s
}

// Server returns the address of the server the message was read from (see
// Client.Server); ok is false when it is not known, for a message made by
// hand or read through a DB whose address cannot be known.
func (m Message) Server() (addr ServerAddress, ok bool) {
	if m.server == nil {
		return ServerAddress{}, false
	}
	return m.server.addr, m.server.ok
}

// stamp records on msgs the server they were read from.
func (c *Client) stamp(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	s := c.server()
	for i := range msgs {
		msgs[i].server = s
	}
}
