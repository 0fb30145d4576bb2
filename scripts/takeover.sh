#!/usr/bin/env bash
# Measures how long the queue sampler election takes to hand sampling over
# when the holder becomes useless, at production-like settings: a 2 s export
# interval and the derived lease TTL (3 intervals + the 2 s sample timeout =
# 8 s). For each case (otelmetrics/takeover_test.go, holderCases) it prints
# the time from the fault to the first queue depth of another replica at an
# OTLP endpoint, and FAIL when one exceeds the issue's bound of 60 s.
#
# Needs PostgreSQL on DATABASE_URL (default 127.0.0.1:5432) and
# /usr/sbin/pgbouncer. Runs: PGMQOTEL_TAKEOVER_RUNS (default 3) per case.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs="${PGMQOTEL_TAKEOVER_RUNS:-3}"
out="$(PGMQOTEL_TAKEOVER=1 PGMQOTEL_TAKEOVER_RUNS="$runs" \
  go test -count=1 -timeout 30m -run '^TestTakeoverTimings$' ./otelmetrics/ -v 2>&1)" || { echo "$out"; exit 1; }
status=0
while IFS=$'\t' read -r _ name times note; do
  worst="$(tr -d '[]' <<<"$times" | tr ' ' '\n' | sed 's/ms$/e-3/; s/s$//' | sort -g | tail -n 1)"
  verdict=PASS
  awk -v w="$worst" 'BEGIN { exit !(w > 60) }' && verdict=FAIL && status=1
  printf '%s\ttakeover\t%-45s\t%s\tworst %ss\t%s\n' "$verdict" "$name" "$times" "$worst" "$note"
done < <(grep '^TAKEOVER' <<<"$out")
exit "$status"
