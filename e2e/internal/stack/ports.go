package stack

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FixedAddrs returns n distinct 127.0.0.1:<port> addresses for a program
// that must be given its ports up front (devstack's flags) and so cannot
// retry on another one. The ports lie below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port taken from that range can be
// handed to any outgoing connection of a parallel test (to PostgreSQL, to a
// collector) between the moment it is chosen and the moment the program
// binds it, which is how a CI run once lost Prometheus's port. Ports below
// the range are only ever taken by a program that asks for them by number.
func FixedAddrs(n int) ([]string, error) {
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		return freeAddrs(n)
	}
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("find %d free ports in %d..%d: none after %d tries", n, lo, hi-1, tries)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ls = append(ls, l)
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// (Linux's default) where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}
