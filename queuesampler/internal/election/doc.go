// Package election elects at most one leader among the replicas of an
// application through a lease row in PostgreSQL, however the replicas reach
// the database: directly, through a connection pooler in session or
// transaction mode, or from a hot standby (where none can lead).
//
// # States
//
//	               Step: TryAcquire ok
//	 +----------+ -----------------------------------> +--------+
//	 | follower |                                      | leader | --+ Step: Renew ok
//	 +----------+ <----------------------------------- +--------+ <-+ (new trust window)
//	   |    ^      Step: Renew says ErrLeaseLost or ErrReadOnly;
//	   +----+      store error once the trust window ran out;
//	Step: ErrHeld, Resign (Release)
//	ErrReadOnly,
//	error
//
// The elector has no goroutine of its own: its owner calls Step at each
// collection. A follower attempts to acquire the lease; a leader renews it.
// Both say whether they are healthy (their exports work): a healthy
// candidate takes over the lease of an unhealthy leader at once, while an
// unhealthy candidate takes only a free or expired lease. So a replica that
// cannot export leads only when no replica that can is there, and then goes
// on sampling for its in-process readers (health endpoints).
//
// # Terms and the trust window
//
// A term is (leader id, elected-at), elected-at being the database's clock
// when the lease was acquired. Renew and Release match the whole term, so a
// replica never extends or ends a newer term, even one of its own.
//
// Every renewal rewrites the lease row (expires-at = now() + TTL, on the
// database's clock, for operators to read). No replica's safety rests on
// that clock, though: a follower takes a lease over only once it has read
// the very same row (term and expires-at) for TTL on its own monotonic
// clock, counted from the end of the attempt that first read it, and the
// takeover is conditional on the row being unchanged (so a renewal that
// lands in between wins). A free (released) lease, a lease of the
// candidate's own id, and, for a healthy candidate, a lease written
// unhealthy are taken at once.
//
// After each successful TryAcquire or Renew the leader trusts its term until
// the attempt's start, on its local monotonic clock, plus TTL minus a safety
// margin. The anchor is the attempt's start, not its end, so a slow renewal
// never stretches the window. A follower first read the row that renewal
// wrote after the renewal started, and waits TTL from then: the leader's
// window ends at least Margin before any takeover, whatever the database's
// clock does, provided the replicas' clocks run at the same rate within the
// margin.
//
// A sample is tagged with the term it was taken in, and Trusted(term) is
// checked again before the sample is reported. A leader frozen by SIGSTOP,
// a long GC pause or a stalled network wakes to a window that has run out:
// it reports nothing, and at its next Step it finds the lease lost (or
// renews it, when no one took over in the meantime).
//
// # Failures
//
//   - The leader dies, is killed or frozen, or loses the network, or sits
//     behind a proxy that stopped forwarding while keeping its sockets: it
//     renews no more, and a follower that has read the unchanged row for
//     TTL acquires it: the takeover comes TTL after the leader's last
//     renewal plus up to one of the follower's Step intervals (the time
//     until it first read that renewal's row). A replica that starts while
//     a dead leader's row is there waits TTL from its first Step. Nothing
//     depends on TCP keepalives or on the server noticing a dead session.
//   - The database host's clock steps (NTP, a VM migration): no effect on
//     who leads. Only the expires-at an operator reads is off by the step.
//   - The leader reaches the database but its exports fail: the owner's
//     health predicate turns false, the leader's next renewal marks its
//     lease unhealthy, and the next healthy follower to Step takes it over
//     at once; the old leader finds its lease lost at its next Step. Since
//     a lease written unhealthy can be taken at once, its term is held but
//     not Trusted: the old leader may go on sampling for its own process,
//     but reports nothing from the moment it sends the renewal that marks
//     it unhealthy (which may commit even when its answer is lost), even if
//     its exports come back in between, until a renewal that writes it
//     healthy is confirmed. With no healthy follower the unhealthy leader
//     keeps its lease, and reports again once such a renewal answers.
//   - A connection pooler in transaction mode: every store call is one
//     short transaction and relies on no session state, so which server
//     connection runs it does not matter, and Release works through it.
//   - A hot standby (or a read-only session): the store answers ErrReadOnly,
//     the replica stays follower and says why; only replicas that reach the
//     primary can lead.
//   - Split primaries (a bound, not a fault the election can see): a
//     standby promoted while the old primary still runs and still serves
//     some replicas. The lease table is UNLOGGED (a promoted standby starts
//     with it empty) and the two servers share nothing, so the replicas on
//     each elect a sampler of their own: two samplers, each reporting its
//     own server's queues, for as long as the old primary takes writes,
//     plus at most TTL - Margin once it is stopped. The application writes
//     to both servers too; only fencing the old primary, which a failover
//     manager does, ends it. The points carry server.address and
//     server.port, which tell the two apart when the replicas name the
//     servers directly rather than through one virtual address.
//   - The lease table is missing: the store creates it when the role may
//     (PostgresDDL), and otherwise answers ErrNotInstalled.
//   - The database is unreachable: a follower stays follower, a leader stops
//     trusting its term when the window runs out.
package election
