package pgmqclient

import "context"

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
// takes one message per call.
func UseSingleMessagePop(c *Client) { c.popMode.Store(popSingle) }
