#!/usr/bin/env bash
# An hour of churn (e2e/soak_test.go, TestChurnSoak): three replicas of the
# example orchestrator with load, against a throwaway PostgreSQL cluster the
# test starts with initdb/pg_ctl, exporting through the real Collector built
# from e2e/cmd/otelcol; queues created and dropped every 3 s, the sampling
# replica killed (SIGKILL) and another frozen (SIGSTOP, 20 s) every 6
# minutes, PostgreSQL restarted once and the Collector twice. Everything
# listens on 127.0.0.1. It checks every queue depth the Collector delivers
# against count(*), at most one sampler per interval and no lease left
# behind, and prints the figures (duration, events, points checked,
# mismatches, memory and goroutine slopes per replica).
#
# Usage: scripts/soak.sh [duration]   (a Go duration, 1m to 3h; default 1h)
# The report is also written to PGMQOTEL_CHURN_REPORT (default
# soak-report.txt in the current directory). CI runs the same test for 3
# minutes (scripts/test.sh). The exit status is the test's.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
duration="${1:-1h}"
report="${PGMQOTEL_CHURN_REPORT:-$PWD/soak-report.txt}"
case "$report" in /*) ;; *) report="$PWD/$report" ;; esac
rm -f "$report"
cd e2e
# -timeout: the longest run (3h) plus building, setting up and checking.
PGMQOTEL_CHURN="$duration" PGMQOTEL_CHURN_REPORT="$report" \
	go test -count=1 -run '^TestChurnSoak$' -timeout 4h -v . 2>&1 | grep -v $'^        \t\\|UTC \\['
status="${PIPESTATUS[0]}"
echo "report: $report"
cat "$report" 2>/dev/null || echo "(no report written)"
exit "$status"
