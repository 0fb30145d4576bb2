package pgmqclient

import (
	"context"
	"maps"
	"time"
)

// Hooks for the external tests (package pgmqclient_test).

// QueueTable exposes queueTable (the server names the table).
var QueueTable = queueTable

// QuoteTable exposes quoteTable.
var QuoteTable = quoteTable

// ScanMessages exposes the by-name mapping of message_record rows.
var ScanMessages = scanMessages

// ScanMetrics runs sql and maps its rows as metrics_result rows.
func ScanMetrics(ctx context.Context, c *Client, sql string) ([]QueueMetrics, error) {
	return c.metrics(ctx, sql)
}

// UseSingleMessagePop makes Pop behave as on releases whose pop(name)
// takes one message per call: the client's capabilities lose pop(name, qty).
func UseSingleMessagePop(ctx context.Context, c *Client) error {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return err
	}
	single := *caps
	single.funcs = maps.Clone(caps.funcs)
	delete(single.funcs, popWithQty)
	single.derive()
	c.caps.caps.Store(&single)
	return nil
}

// DepthStatements lists every statement of depth_sql.go, the per-table
// ones built for table rel.
func DepthStatements(rel string) map[string]string {
	return map[string]string{
		"scan":               depthScanSQL(rel),
		"discover":           depthDiscoverSQL,
		"catalog":            depthCatalogSQL,
		"local timeouts":     localTimeoutsSQL,
		"probe, vt index":    depthProbeSQL(rel, true),
		"probe, no vt index": depthProbeSQL(rel, false),
		"id sample":          depthSampleSQL(rel),
	}
}

// SetCatalogChunk sets how many queues one catalog statement reads, for
// tests crossing chunk boundaries with few queues; it returns the
// function restoring the default.
func SetCatalogChunk(n int) func() {
	old := catalogChunk
	catalogChunk = n
	return func() { catalogChunk = old }
}

// SetDepthPhases makes every successful sample report its phases' times
// to f (nil: stop).
func SetDepthPhases(f func(discover, catalog, probe time.Duration)) { depthPhases = f }
