#!/usr/bin/env bash
# The project's test command: every test of the three modules (the root,
# the Collector receiver in collector/pgmqreceiver, e2e) under the race
# detector, against the PostgreSQL at DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), plus short fuzz runs.
# Extra arguments go to `go test` (for example -run or -v).
#
# The output is go test's usual one; at the end a summary says what was
# tested: which PGMQ the database tests ran against (extension, PGMQ's SQL
# install file from PGMQ_SQL, or the project's compat schema), the skipped
# tests by reason, and a last line `tests: N passed, N failed, N skipped`.
# The exit status is go test's (non-zero if any run failed).
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/testsummary" ./scripts/testsummary
verbose=""
for a in "$@"; do [ "$a" = "-v" ] && verbose="-v"; done

status=0
# run DIR ARGS...: go test -json in DIR, shown as go test shows it, saved
# for the summary; remembers the first failing status.
run() {
	local dir="$1"
	shift
	set +e
	(cd "$dir" && go test -json "$@") | tee -a "$work/tests.json" | "$work/testsummary" -stream $verbose
	local st="${PIPESTATUS[0]}"
	set -e
	if [ "$st" -ne 0 ] && [ "$status" -eq 0 ]; then status="$st"; fi
}

run . -race -count=1 "$@" ./...
run collector/pgmqreceiver -race -count=1 "$@" ./...
# -p 1: the e2e packages each start a Collector and a Prometheus on free
# loopback ports; one package at a time keeps them from racing for ports
# and CPU on a small machine.
run e2e -race -count=1 -p 1 -timeout 30m "$@" ./...

# Short fuzz runs of the queue-name targets and of the extraction of trace
# context from message headers (the committed corpora in
# pgmqclient/testdata/fuzz and otelpgmq/testdata/fuzz also run with every
# `go test` above).
# PGMQOTEL_FUZZTIME lengthens them, e.g. PGMQOTEL_FUZZTIME=5000000x.
# Both bounds are counts, not durations: a duration makes Go 1.26's fuzz
# coordinator race its own deadline and, now and then, fail a target with
# a bare "context deadline exceeded" and no failing input
# (go.dev/issue/75804, fixed in Go 1.27). 70,000 inputs take about 10 s
# here. Minimisation is bounded too: with its default of 60s per new
# input, a 10s run spent most of its time minimising, not fuzzing.
fuzztime="${PGMQOTEL_FUZZTIME:-70000x}"
for target in pgmqclient:FuzzValidateQueueName pgmqclient:FuzzQuoteIdentifier otelpgmq:FuzzMessageContext; do
	if ! go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1000x "./${target%%:*}"; then
		[ "$status" -eq 0 ] && status=1
	fi
done

"$work/testsummary" "$work/tests.json"
exit "$status"
