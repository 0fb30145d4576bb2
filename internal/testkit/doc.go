// Package testkit groups the tools the project's tests use and the module
// never ships: a throwaway PgBouncer (pgbouncer), PostgreSQL clusters of a
// test's own (pgcluster), a TCP proxy that injects network faults
// (faultproxy), certificates made for a test (testcerts), the checks that
// keep README.md and docs/ in step with the code (readme) and the check that
// instrumentation packages depend on the OpenTelemetry API only (apideps).
// Nothing outside tests imports them.
package testkit
