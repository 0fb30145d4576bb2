#!/usr/bin/env bash
# Runs the demo pipeline without Docker, on 127.0.0.1: the OpenTelemetry
# Collector (built from e2e/cmd/otelcol) with collector-config.yaml on
# 4317/4318 (metrics on 8889), and Prometheus with deploy/prometheus
# (scrape jobs and alert rules, exemplar storage on) on 9090. Traces go to
# -backend (an OTLP gRPC Jaeger, for example the one e2e/cmd/jaegerbin
# builds). Ctrl-C stops everything.
#
#   scripts/stack.sh                       # collector + Prometheus
#   scripts/stack.sh -orchestrator         # ... and examples/orchestrator (needs
#                                          #     DATABASE_URL with PGMQ installed)
#   scripts/stack.sh -configs collector/tempo.yaml -backend 127.0.0.1:4317
#   scripts/stack.sh -h                    # every flag
#
# Needs Go and /usr/bin/prometheus (Debian package "prometheus"; set
# PROMETHEUS_BIN for another path). Grafana is not started: point one at
# http://127.0.0.1:9090 and import deploy/grafana/dashboards/pgmq-orchestrator.json.
set -euo pipefail
cd "$(dirname "$0")/../e2e"
# Built, then exec'd (not `go run`), so that a plain kill/SIGTERM reaches it.
bin="${TMPDIR:-/tmp}/pgmqotel-devstack-$(id -u)"
go build -o "$bin" ./cmd/devstack
exec "$bin" "$@"
