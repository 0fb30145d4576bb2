#!/usr/bin/env bash
# Runs the demo pipeline without Docker, on 127.0.0.1: the OpenTelemetry
# Collector (built from e2e/cmd/otelcol) with collector-config.yaml on
# 4317/4318 (metrics on 8889), Prometheus with deploy/prometheus (scrape
# jobs and alert rules, exemplar storage on) on 9090, and Jaeger v2 as the
# trace backend (query API on 16686). Ctrl-C stops everything; the logs stay
# in the -dir folder (printed at start and at exit).
#
#   scripts/stack.sh                       # collector + Prometheus + Jaeger
#   scripts/stack.sh -orchestrator         # ... and examples/orchestrator: on DATABASE_URL, or
#                                          #     without it on a throwaway PostgreSQL cluster
#                                          #     (initdb; removed at exit) with PGMQ from the
#                                          #     extension, else the project's compat schema
#                                          #     (named "not PGMQ" on every summary line)
#   scripts/stack.sh -orchestrator -pgmq-sql path/to/pgmq.sql
#                                          # ... first putting PGMQ (its own SQL install
#                                          #     file, from a PGMQ release) into the database;
#                                          #     not re-applied if PGMQ is there
#   scripts/stack.sh -jaeger=false         # no trace backend (traces stay in the collector)
#   scripts/stack.sh -backend 127.0.0.1:4317   # traces to an OTLP gRPC backend of your own
#   scripts/stack.sh -h                    # every flag
#
# Needs Go and /usr/bin/prometheus (Debian package "prometheus"; set
# PROMETHEUS_BIN for another path); for the throwaway database, the
# PostgreSQL server package (initdb, postgres; PGBIN names their directory).
# The Collector is built once (3-4 minutes) and Jaeger once (about 8
# minutes) into ${XDG_CACHE_HOME:-~/.cache}/pgmqotel and reused;
# OTELCOL_BIN and JAEGER_BIN name prebuilt ones instead. Grafana is not
# started: point one at http://127.0.0.1:9090 and import
# deploy/grafana/dashboards/pgmq-orchestrator.json.
set -euo pipefail
export DEVSTACK_CALLER_DIR="$PWD" # relative -dir and -pgmq-sql are the caller's
cd "$(dirname "$0")/../e2e"
# Built, then exec'd (not `go run`), so that a plain kill/SIGTERM reaches it.
bin="${TMPDIR:-/tmp}/pgmqotel-devstack-$(id -u)"
go build -o "$bin" ./cmd/devstack
exec "$bin" "$@"
