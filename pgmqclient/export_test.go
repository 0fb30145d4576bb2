package pgmqclient

import (
	"context"
	"maps"
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
