#!/usr/bin/env bash
# The project's test command: every test of both modules under the race
# detector, against the PostgreSQL at DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), plus short fuzz runs.
# Extra arguments go to `go test` (for example -run or -v).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 "$@" ./...
# -p 1: the e2e packages each start a Collector and a Prometheus on free
# loopback ports; one package at a time keeps them from racing for ports
# and CPU on a small machine.
(cd e2e && go test -race -count=1 -p 1 -timeout 30m "$@" ./...)

# Short fuzz runs of the queue-name targets (the committed corpus in
# pgmqclient/testdata/fuzz also runs with every `go test` above).
# PGMQOTEL_FUZZTIME lengthens them, e.g. PGMQOTEL_FUZZTIME=10m.
# Minimisation is bounded by count: with its default of 60s per new input,
# a 10s run spent most of its time minimising (0 execs/s), not fuzzing.
fuzztime="${PGMQOTEL_FUZZTIME:-10s}"
for target in FuzzValidateQueueName FuzzQuoteIdentifier; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1000x ./pgmqclient
done
