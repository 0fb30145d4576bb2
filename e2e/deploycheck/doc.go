// Package deploycheck holds the tests of the deployment files: the collector
// configurations (validated and run by the real collector), the Prometheus
// configuration and rules (promtool), and docker-compose.yml (loaded with the
// compose-spec loader). It has no code of its own.
package deploycheck
