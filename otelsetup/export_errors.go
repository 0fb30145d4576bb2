package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Export failures. The OTLP exporters report a failed export as, say,
// "failed to upload metrics: ... connection refused" or "... x509:
// certificate signed by unknown authority", naming neither the endpoint
// nor the variable that chose it, and the SDK hands the same words to
// otel.Handle at every interval. Here each failure becomes an
// *ExportError that names the endpoint, says what went wrong in words and
// which variables to look at, and is handed to otel.Handle once per
// distinct failure: again only after an export succeeded or failed
// differently. Callers of ForceFlush and Shutdown still get every error.

// ExportError is a failed OTLP export, explained.
type ExportError struct {
	Signal   string   // "metrics" or "traces"
	Endpoint string   // where the exporter sends, as configured
	Problem  string   // what went wrong, in words
	Vars     []string // the variables to look at, the likeliest first
	Err      error    // the exporter's own error
	kind     string   // the failure, for telling failures apart
}

// Error implements error.
func (e *ExportError) Error() string {
	return fmt.Sprintf("otelsetup: %s export to %s failed: %s (check %s): %v",
		e.Signal, e.Endpoint, e.Problem, strings.Join(e.Vars, ", "), e.Err)
}

// Unwrap returns the exporter's error.
func (e *ExportError) Unwrap() error { return e.Err }

// otlpTarget is where a signal's OTLP exporter sends, and which variables
// said so, read when the exporter is built (the SDK reads them then too).
type otlpTarget struct {
	signal      string // "metrics" or "traces"
	endpoint    string
	endpointVar string // the variable the endpoint came from, or the general one when unset
	// caVar, certVar and keyVar are the TLS variables in effect, or the
	// general ones when none is set.
	caVar, certVar, keyVar string
	tls                    bool // the endpoint asks for TLS
	clientCert             bool // a client certificate is set
	inCode                 bool // exporter options given in code may override all of it
	reporter               failureReporter
}

// newOTLPTarget reads the endpoint and TLS variables of signal ("METRICS"
// or "TRACES") as the SDK does: the signal's own variable first, then the
// general one.
func newOTLPTarget(signal, protocol string, inCode bool) *otlpTarget {
	t := &otlpTarget{signal: strings.ToLower(signal), inCode: inCode}
	signalEndpoint := otlpVar(signal, "ENDPOINT")
	switch v, ok := lookup(signalEndpoint); {
	case ok:
		t.endpoint, t.endpointVar = v, signalEndpoint
	default:
		t.endpointVar = envEndpoint
		if v, ok := lookup(envEndpoint); ok {
			t.endpoint = v
		} else if protocol == ProtocolHTTPProtobuf {
			t.endpoint = "https://localhost:4318 (the default)"
		} else {
			t.endpoint = "https://localhost:4317 (the default)"
		}
	}
	t.caVar = effectiveVar(signal, "CERTIFICATE")
	t.certVar = effectiveVar(signal, "CLIENT_CERTIFICATE")
	t.keyVar = effectiveVar(signal, "CLIENT_KEY")
	_, t.clientCert = lookup(t.certVar)
	// The SDK's rule: TLS unless the endpoint says http:// or INSECURE
	// says true (read after the endpoint).
	t.tls = !strings.HasPrefix(t.endpoint, "http://")
	if v, ok := lookup(effectiveVar(signal, "INSECURE")); ok {
		t.tls = !strings.EqualFold(strings.TrimSpace(v), "true")
	}
	return t
}

// otlpVar is the name of a signal's OTLP variable: otlpVar("TRACES",
// "ENDPOINT") is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; an empty signal gives
// the general one.
func otlpVar(signal, suffix string) string {
	if signal == "" {
		return "OTEL_EXPORTER_OTLP_" + suffix
	}
	return "OTEL_EXPORTER_OTLP_" + signal + "_" + suffix
}

// effectiveVar is the signal's variable when set, else the general one.
func effectiveVar(signal, suffix string) string {
	if _, ok := lookup(otlpVar(signal, suffix)); ok {
		return otlpVar(signal, suffix)
	}
	return otlpVar("", suffix)
}

// failureKinds tell export failures apart by the words of the exporter's
// error (gRPC passes TLS and dial errors on as text only), most specific
// first.
var failureKinds = []struct {
	kind  string
	words []string
	// problem and vars explain it; vars are picked from the target.
	problem string
	vars    func(t *otlpTarget) []string
}{
	{"unknown authority", []string{"certificate signed by unknown authority"},
		"the Collector's certificate is not signed by a CA this process trusts (the one in the certificate variable, else the system's)",
		func(t *otlpTarget) []string { return []string{t.caVar} }},
	{"certificate name", []string{"x509: certificate is valid for", "x509: certificate is not valid for any names"},
		"the Collector's certificate does not name the endpoint's host",
		func(t *otlpTarget) []string { return []string{t.endpointVar, t.caVar} }},
	{"certificate expired", []string{"certificate has expired or is not yet valid"},
		"the Collector's certificate has expired or is not yet valid",
		func(t *otlpTarget) []string { return []string{t.caVar} }},
	{"client certificate", []string{"tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority",
		"tls: unknown certificate", "tls: certificate unknown", "tls: expired certificate"},
		"the Collector wants a client certificate it trusts, and did not get one",
		func(t *otlpTarget) []string { return []string{t.certVar, t.keyVar} }},
	{"not TLS", []string{"first record does not look like a TLS handshake", "server gave HTTP response to HTTPS client"},
		"the endpoint asks for TLS (https://) but the Collector speaks plain text there",
		func(t *otlpTarget) []string { return []string{t.endpointVar, otlpVar("", "INSECURE")} }},
	{"closed", closedWords, "", nil}, // see closed
	{"refused", []string{"connection refused"},
		"nothing listens at the endpoint",
		func(t *otlpTarget) []string { return []string{t.endpointVar} }},
	{"no such host", []string{"no such host"},
		"the endpoint's host name does not resolve",
		func(t *otlpTarget) []string { return []string{t.endpointVar} }},
	{"timeout", []string{"deadline exceeded", "export timeout", "Client.Timeout"},
		"no answer within the export timeout",
		func(t *otlpTarget) []string { return []string{t.endpointVar, otlpVar("", "TIMEOUT")} }},
}

// closedWords are the Collector closing the connection during or right
// after the handshake. Over TLS 1.3 a Collector that refuses the client's
// certificate (or its absence) says so in an alert after the client has
// finished its handshake, and the client reads either the alert or, when
// its first write comes first, a closed connection: the same failure.
var closedWords = []string{"broken pipe", "connection reset by peer", "http2: client conn could not be established",
	"error reading server preface", "connection closed before server preface received", "malformed HTTP response"}

// closed explains a connection closed by the Collector: over TLS most
// likely the client certificate (the same failure as its alert, see
// closedWords); in plain text, a Collector that expects TLS.
func (t *otlpTarget) closed() (kind, problem string, vars []string) {
	if t.tls {
		problem := "the Collector closed the connection right after the TLS handshake: it may require a client certificate, and none is set"
		if t.clientCert {
			problem = "the Collector closed the connection right after the TLS handshake: it may not accept this client certificate"
		}
		return "client certificate", problem, []string{t.certVar, t.keyVar}
	}
	return "expects TLS", "the Collector closed the connection: it may expect TLS (an https:// endpoint) or another protocol",
		[]string{t.endpointVar, envProtocol}
}

// explain makes an *ExportError of an exporter's error.
func (t *otlpTarget) explain(err error) *ExportError {
	var already *ExportError
	if errors.As(err, &already) {
		return already
	}
	e := &ExportError{Signal: t.signal, Endpoint: t.endpoint, Err: err, kind: "other",
		Problem: "the export failed", Vars: []string{t.endpointVar}}
	msg := err.Error()
	for _, k := range failureKinds {
		if !containsAny(msg, k.words) {
			continue
		}
		if k.vars == nil {
			e.kind, e.Problem, e.Vars = t.closed()
		} else {
			e.kind, e.Problem, e.Vars = k.kind, k.problem, k.vars(t)
		}
		break
	}
	if t.inCode {
		e.Vars = append(e.Vars, "the exporter options given in code")
	}
	return e
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// unfinished explains an error of a flush or a shutdown, of t's exports
// (t may be nil: no OTLP exporter). The SDK returns a bare "context
// deadline exceeded" when the caller's deadline passes before the export
// ends.
func (t *otlpTarget) unfinished(what string, err error) error {
	var exportErr *ExportError
	switch {
	case errors.As(err, &exportErr):
		return fmt.Errorf("%s: %w", what, err)
	case t != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return fmt.Errorf("the %s of %s to %s (%s) did not finish in time: %w", what, t.signal, t.endpoint, t.endpointVar, err)
	}
	return err
}

// failureReporter lets each distinct export failure through once, until
// an export succeeds.
type failureReporter struct {
	mu       sync.Mutex
	reported map[string]bool // kinds handed on since the last success
}

// succeeded forgets the failures reported.
func (r *failureReporter) succeeded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.reported)
}

// first reports whether err is the first of its kind since the last
// success, and remembers it. Errors that are not *ExportError always are.
func (r *failureReporter) first(err error) bool {
	var e *ExportError
	if !errors.As(err, &e) {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reported[e.kind] {
		return false
	}
	if r.reported == nil {
		r.reported = map[string]bool{}
	}
	r.reported[e.kind] = true
	return true
}
