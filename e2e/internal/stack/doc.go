// Package stack runs the project's observability pipeline for end-to-end
// tests: a real OpenTelemetry Collector (built from e2e/cmd/otelcol and
// started with the repository's collector-config.yaml) and a real Prometheus
// (/usr/bin/prometheus, or $PROMETHEUS_BIN) scraping it with the shipped
// scrape configuration and alert rules. Everything listens on 127.0.0.1 free
// ports and lives in the test's temporary directory.
//
// Typical use:
//
//	func TestMain(m *testing.M) { stack.Main(m) } // removes the built collector
//
//	func TestSomething(t *testing.T) {
//		s := stack.Start(t)  // collector + prometheus, stopped in t.Cleanup
//		s.SetOTLPEnv(t)      // OTEL_EXPORTER_OTLP_* for an in-process SDK
//		cmd.Env = append(os.Environ(), s.Collector.OTLPEnv()...) // or for a child process
//		...
//		got := s.WaitForSamples(t, `pgmq_queue_depth{pgmq_message_state="visible"}`, 1)
//		rules := s.WaitForRules(t) // loaded and evaluated; check Health == "ok"
//		path, _ := stack.DashboardPath()
//		s.CheckDashboard(t, path) // every panel query returns data
//	}
//
// The collector binary is built once per test process (the Go build cache
// makes later builds cheap); set OTELCOL_BIN to use a prebuilt one.
//
// Functions taking a context return errors and can run outside tests (see
// e2e/cmd/devstack); the testing.TB helpers fail the test instead.
package stack
