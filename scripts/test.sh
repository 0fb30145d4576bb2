#!/usr/bin/env bash
# The project's test command: every test of both modules under the race
# detector, against the PostgreSQL at DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), plus short fuzz runs.
# Extra arguments go to `go test` (for example -run or -v).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 "$@" ./...
(cd e2e && go test -race -count=1 -timeout 30m "$@" ./...)
