package otelpgmq

import (
	"bytes"
	"encoding/json"
	"slices"

	"go.opentelemetry.io/otel/propagation"
)

// headerCarrier reads the string-valued top-level keys of a message's
// headers object. Other values, and headers that are not an object, carry
// nothing.
func headerCarrier(headers json.RawMessage) propagation.MapCarrier {
	var out propagation.MapCarrier
	ok := scanHeaders(headers, func(key, val []byte) bool {
		k, kok := unquote(key)
		v, vok := unquote(val)
		if !kok || !vok {
			return false
		}
		if out == nil {
			out = make(propagation.MapCarrier, 4)
		}
		out[k] = v
		return true
	})
	if !ok {
		return nil
	}
	return out
}

// scanHeaders calls yield with the quoted key and value of each
// string-valued top-level key of the headers object d, in order, and
// reports whether d is a well-formed object and yield accepted every pair.
// It scans the JSON itself rather than decoding it into a map: extraction
// runs for every message received and processed.
func scanHeaders(d []byte, yield func(key, val []byte) bool) bool {
	return scanObject(d, func(key, val []byte, str bool) bool {
		return !str || yield(key, val)
	})
}

// scanObject calls yield with the quoted key and the raw value of each
// top-level key of the object d, in order, str telling whether the value is
// a string, and reports whether d is a well-formed object and yield
// accepted every member. Nesting is skipped without recursion, however
// deep.
func scanObject(d []byte, yield func(key, val []byte, str bool) bool) bool {
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		return false
	}
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return true
	}
	for i < len(d) {
		ks := i
		next, ok := stringEnd(d, i)
		if !ok {
			return false
		}
		key := d[ks:next]
		i = skipSpace(d, next)
		if i >= len(d) || d[i] != ':' {
			return false
		}
		i = skipSpace(d, i+1)
		vs := i
		str := i < len(d) && d[i] == '"'
		if str {
			i, ok = stringEnd(d, i)
		} else {
			i, ok = skipValue(d, i)
		}
		if !ok || !yield(key, d[vs:i], str) {
			return false
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return false
		}
		switch d[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(d, i+1)
		default:
			return false
		}
	}
	return false
}

// headerFields is a propagation.TextMapCarrier over a headers object
// scanHeaders accepted: each Get scans it again instead of copying every
// key and value into a map first. Like the map, a repeated key gives its
// last value. Get applies the limits of extraction (limitValue).
type headerFields struct {
	h         []byte
	noBaggage bool // the W3C baggage key reads as absent
}

// Get returns the value of key, "" when there is none or it is over its
// limit.
func (f headerFields) Get(key string) string {
	if f.noBaggage && key == baggageKey {
		return ""
	}
	var val []byte
	scanHeaders(f.h, func(k, v []byte) bool {
		if quotedEquals(k, key) {
			val = v
		}
		return true
	})
	if val == nil {
		return ""
	}
	s, _ := unquote(val)
	return limitValue(key, s)
}

// Set does nothing: headers are only read.
func (headerFields) Set(string, string) {}

// Keys returns the string-valued keys, each once.
func (f headerFields) Keys() []string {
	var keys []string
	scanHeaders(f.h, func(k, _ []byte) bool {
		if s, ok := unquote(k); ok && !slices.Contains(keys, s) {
			keys = append(keys, s)
		}
		return true
	})
	return keys
}

// quotedEquals reports whether the JSON string q (quotes included) is s.
func quotedEquals(q []byte, s string) bool {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1:len(q)-1]) == s
	}
	u, ok := unquote(q)
	return ok && u == s
}

// unquote decodes the JSON string q (quotes included).
func unquote(q []byte) (string, bool) {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), true
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", false
	}
	return s, true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the JSON string starting at d[i] (a
// quote).
func stringEnd(d []byte, i int) (int, bool) {
	if i >= len(d) || d[i] != '"' {
		return i, false
	}
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(d), false
}

// skipValue skips the JSON value (not a string) starting at d[i] and
// returns the index after it.
func skipValue(d []byte, i int) (int, bool) {
	depth := 0
	for i < len(d) {
		switch c := d[i]; c {
		case '"':
			next, ok := stringEnd(d, i)
			if !ok || !validString(d[i:next]) {
				return i, false
			}
			i = next
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, true
			}
			depth--
		case ',':
			if depth == 0 {
				return i, true
			}
		}
		i++
	}
	return i, depth == 0
}

// validString reports whether the JSON string q (quotes included) decodes:
// only strings with escapes need checking, and decoding them.
func validString(q []byte) bool {
	if bytes.IndexByte(q, '\\') < 0 {
		return true
	}
	_, ok := unquote(q)
	return ok
}
