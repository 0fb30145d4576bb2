// Package testkit groups the tools the project's tests use and the module
// never ships: a throwaway PgBouncer (pgbouncer), PostgreSQL clusters of a
// test's own (pgcluster), a TCP proxy that injects network faults
// (faultproxy) and the checks that keep README.md in step with the code
// (readme). Nothing outside tests imports them.
package testkit
