package pgmqclient

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
)

// reservedHeaderPrefix marks PGMQ's own header keys (x-pgmq-group, ...),
// which hooks never write.
const reservedHeaderPrefix = "x-pgmq-"

// sendTakesHeaders reports whether the server's pgmq.send takes headers
// (1.5 on), from the client's Capabilities: asking the catalog (once)
// rather than trying and falling back keeps a failed statement from
// aborting the caller's transaction. Every traced Send asks, so the
// answer is a field of the Capabilities, not a map lookup.
func (c *Client) sendTakesHeaders(ctx context.Context) (bool, error) {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return false, err
	}
	return caps.sendHeaders, nil
}

// sendWithHeaders is the form of send the client calls with headers;
// Capabilities looks it up once per catalog read (sendHeaders).
var sendWithHeaders = sig("send", textArg, "jsonb", "jsonb", integerArg)

// hookHeader is hookHeaders for one message.
func (c *Client) hookHeader(ctx context.Context, h json.RawMessage, added *HeaderCarrier) (json.RawMessage, bool, error) {
	if added.Len() == 0 {
		return h, false, nil
	}
	ok, err := c.sendTakesHeaders(ctx)
	if err != nil || !ok {
		return h, false, err
	}
	out, merged := mergeHeaders(h, added)
	return out, merged, nil
}

// hookHeaders merges the keys a hook added into each message's headers
// (see TraceSendStartData.Headers). headers[i] are the caller's headers for
// message i (nil for none; headers itself may be nil); added[i] the hook's.
// It returns the headers to send, nil when no message has any, and whether
// the hook's keys were written. Without headers support on the server the
// caller's headers come back unchanged.
func (c *Client) hookHeaders(ctx context.Context, headers []json.RawMessage, added []HeaderCarrier) ([]json.RawMessage, bool, error) {
	any := false
	for i := range added {
		if added[i].Len() > 0 {
			any = true
			break
		}
	}
	if !any {
		return headers, false, nil
	}
	ok, err := c.sendTakesHeaders(ctx)
	if err != nil || !ok {
		return headers, false, err
	}
	out := make([]json.RawMessage, len(added))
	merged := false
	for i := range added {
		var h json.RawMessage
		if i < len(headers) {
			h = headers[i]
		}
		var m bool
		out[i], m = mergeHeaders(h, &added[i])
		merged = merged || m
	}
	return out, merged, nil
}

// mergeHeaders adds the keys of add to the JSON object h (nil: a new object)
// as string values, all or none: when h already has one of them, the
// caller propagates a context of its own and none is added (a traceparent
// of one trace beside a tracestate of another would mislead). Keys with
// PGMQ's reserved prefix are never added; h that is not an object is
// returned unchanged. It reports whether the keys were added.
func mergeHeaders(h json.RawMessage, add *HeaderCarrier) (json.RawMessage, bool) {
	if h == nil {
		return newHeaders(add)
	}
	if t := bytes.TrimLeft(h, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return h, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(h, &obj); err != nil || obj == nil {
		return h, false
	}
	for i := 0; i < len(add.kv); i += 2 {
		if _, taken := obj[add.kv[i]]; taken {
			return h, false
		}
	}
	added := false
	add.all(func(k, v string) {
		if reserved(k) {
			return
		}
		obj[k] = appendJSONString(nil, v)
		added = true
	})
	if !added {
		return h, false
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return h, false
	}
	return b, true
}

// reserved reports whether key has PGMQ's reserved prefix, in any case.
func reserved(key string) bool {
	return len(key) >= len(reservedHeaderPrefix) && strings.EqualFold(key[:len(reservedHeaderPrefix)], reservedHeaderPrefix)
}

// newHeaders writes add as a JSON object of strings, in the order the keys
// were set, without the reserved keys: the common case (the caller sent no
// headers) in one allocation, without a map decode and a reflective encode
// per message.
func newHeaders(add *HeaderCarrier) (json.RawMessage, bool) {
	n := 2
	for i := 0; i < len(add.kv); i++ {
		n += len(add.kv[i]) + 3 // quotes and a colon or comma
	}
	b := make([]byte, 0, n)
	add.all(func(k, v string) {
		if reserved(k) {
			return
		}
		if len(b) == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	})
	if len(b) == 0 {
		return nil, false
	}
	return append(b, '}'), true
}

// appendJSONString appends s as a JSON string. Plain printable ASCII (all a
// propagator writes) is copied; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
