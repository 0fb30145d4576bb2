#!/usr/bin/env bash
# Runs the demo pipeline without Docker, on 127.0.0.1: the OpenTelemetry
# Collector (built from e2e/cmd/otelcol) with collector-config.yaml on
# 4317/4318 (metrics on 8889), and Prometheus with deploy/prometheus
# (scrape jobs and alert rules, exemplar storage on) on 9090. Traces go to
# -backend (an OTLP gRPC Jaeger, for example the one e2e/cmd/jaegerbin
# builds). Ctrl-C stops everything; the logs stay in the -dir folder
# (printed at start and at exit).
#
#   scripts/stack.sh                       # collector + Prometheus
#   scripts/stack.sh -orchestrator         # ... and examples/orchestrator (needs
#                                          #     DATABASE_URL with PGMQ installed)
#   scripts/stack.sh -orchestrator -pgmq-sql path/to/pgmq.sql
#                                          # ... first putting PGMQ (its own SQL install
#                                          #     file, from a PGMQ release) into a plain
#                                          #     PostgreSQL; not re-applied if PGMQ is there
#   scripts/stack.sh -configs collector/tempo.yaml -backend 127.0.0.1:4317
#   scripts/stack.sh -h                    # every flag
#
# Needs Go and /usr/bin/prometheus (Debian package "prometheus"; set
# PROMETHEUS_BIN for another path). The Collector is built once (3-4 minutes)
# into ${XDG_CACHE_HOME:-~/.cache}/pgmqotel and reused while its sources are
# unchanged; OTELCOL_BIN names a prebuilt one instead. Grafana is not started:
# point one at http://127.0.0.1:9090 and import
# deploy/grafana/dashboards/pgmq-orchestrator.json.
set -euo pipefail
export DEVSTACK_CALLER_DIR="$PWD" # relative -dir and -pgmq-sql are the caller's
cd "$(dirname "$0")/../e2e"
# Built, then exec'd (not `go run`), so that a plain kill/SIGTERM reaches it.
bin="${TMPDIR:-/tmp}/pgmqotel-devstack-$(id -u)"
go build -o "$bin" ./cmd/devstack
exec "$bin" "$@"
