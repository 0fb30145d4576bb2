package otelsetup

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
)

// Loud configuration. The OpenTelemetry Go SDK reads its OTEL_* variables
// leniently: a value it cannot use is dropped for a default, at best with
// a log line that names neither the variable nor what is used instead
// (OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:4317 falls back to
// localhost:4317; OTEL_METRIC_EXPORT_INTERVAL=5s to 60 s; a compression
// of "GZIP" to none). checkMetricsEnv and checkTracesEnv read the same
// variables the same way before the SDK does and report every such value
// once:
//
//   - as an *EnvError, failing NewMeterProvider or NewTracerProvider,
//     where the fallback would send telemetry elsewhere than meant or the
//     SDK would log its own (repeated, vaguer) message: exporter names,
//     protocols, endpoints, headers, INSECURE, timeouts and intervals, TLS
//     files, resource attributes, the Prometheus port;
//   - as one *EnvWarning handed to otel.Handle where the specification
//     says to warn and carry on and the fallback still exports:
//     OTEL_SDK_DISABLED and the enumerations (compression, temporality,
//     histogram aggregation, exemplar filter). A non-boolean
//     OTEL_EXPORTER_OTLP_INSECURE is an error: the SDK's fallback turns
//     TLS on and the exports fail.
//
// Header values and key files are secrets: they are never part of a
// message.

// EnvError reports an OTEL_* variable whose value NewMeterProvider or
// NewTracerProvider cannot honour. It fails the call instead of being
// guessed around, because a wrong guess sends telemetry nowhere without a
// word.
type EnvError struct {
	Name      string // the variable
	Value     string // its value ("<not shown>" for secrets)
	Supported string // the values accepted, for the message
	// Instead is what the SDK would have used in silence, if anything.
	Instead string
}

// Error implements error.
func (e *EnvError) Error() string {
	msg := fmt.Sprintf("otelsetup: unsupported %s=%q (supported: %s)", e.Name, e.Value, e.Supported)
	if e.Instead != "" {
		msg += "; the SDK would have used " + e.Instead + " instead"
	}
	return msg
}

// EnvWarning reports an OTEL_* value that the specification says to warn
// about and replace: NewMeterProvider and NewTracerProvider hand it to
// otel.Handle and go on with Using.
type EnvWarning struct {
	Name      string // the variable
	Value     string // its value
	Supported string // the values accepted
	Using     string // what is used instead
}

// Error implements error (for otel.Handle).
func (w *EnvWarning) Error() string {
	return fmt.Sprintf("otelsetup: warning: %s=%q is not one of %s; using %s", w.Name, w.Value, w.Supported, w.Using)
}

// Variables checked here besides those in exporter_env.go.
const (
	envEndpoint      = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envResourceAttrs = "OTEL_RESOURCE_ATTRIBUTES"
	envPromHost      = "OTEL_EXPORTER_PROMETHEUS_HOST"
	envPromPort      = "OTEL_EXPORTER_PROMETHEUS_PORT"
)

// lookup returns a variable's value; set is false when it is unset or
// empty, which the specification treats alike.
func lookup(name string) (v string, set bool) {
	v = os.Getenv(name)
	return v, v != ""
}

// checkMetricsEnv checks the variables the metric readers in use will
// read: OTLP ones only with an OTLP exporter, the periodic reader's with a
// periodic reader (OTLP or console), Prometheus ones with Prometheus. It
// returns the first error; warnings go to otel.Handle as they are found.
func checkMetricsEnv(exporters exporterList) error {
	if err := checkResourceAttributes(); err != nil {
		return err
	}
	if exporters.has(ExporterOTLP) || exporters.has(ExporterConsole) {
		for _, v := range []struct{ name, def string }{
			{"OTEL_METRIC_EXPORT_INTERVAL", "60000"},
			{"OTEL_METRIC_EXPORT_TIMEOUT", "30000"},
		} {
			if err := checkMillis(v.name, v.def); err != nil {
				return err
			}
		}
	}
	warnEnum("OTEL_METRICS_EXEMPLAR_FILTER", true, "trace_based (the default)", "trace_based", "always_on", "always_off")
	if exporters.has(ExporterPrometheus) {
		if v, set := lookup(envPromPort); set {
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > math.MaxUint16 {
				return &EnvError{Name: envPromPort, Value: v, Supported: "a TCP port number, 0 to 65535"}
			}
		}
	}
	if !exporters.has(ExporterOTLP) {
		return nil
	}
	if err := checkOTLPEnv("METRICS"); err != nil {
		return err
	}
	warnEnum("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", true, "cumulative (the default)", "cumulative", "delta", "lowmemory")
	warnEnum("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", true,
		"explicit_bucket_histogram (the default)", "explicit_bucket_histogram", "base2_exponential_bucket_histogram")
	return nil
}

// checkTracesEnv checks the variables the span exporters in use will read.
func checkTracesEnv(exporters exporterList) error {
	if err := checkResourceAttributes(); err != nil {
		return err
	}
	if !exporters.has(ExporterOTLP) {
		return nil
	}
	return checkOTLPEnv("TRACES")
}

// checkOTLPEnv checks the OTLP exporter's variables of signal ("METRICS"
// or "TRACES"), the general ones and the signal's own, which the SDK reads
// alike.
func checkOTLPEnv(signal string) error {
	for _, s := range []string{"", signal} {
		if err := checkEndpoint(otlpVar(s, "ENDPOINT")); err != nil {
			return err
		}
	}
	for _, s := range []string{"", signal} {
		if err := checkHeaders(otlpVar(s, "HEADERS")); err != nil {
			return err
		}
		if err := checkMillis(otlpVar(s, "TIMEOUT"), "10000"); err != nil {
			return err
		}
		// The SDK compares with "gzip" exactly; anything else is no compression.
		warnEnum(otlpVar(s, "COMPRESSION"), false, "none (no compression)", "gzip", "none")
		// Not a warning, though a boolean: the SDK reads anything but
		// "true" as false, which turns TLS on even for an http:// endpoint,
		// so the exports fail against a plain-text collector.
		if v, set := lookup(otlpVar(s, "INSECURE")); set &&
			!strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return &EnvError{Name: otlpVar(s, "INSECURE"), Value: v, Supported: "true, false",
				Instead: "false, which means TLS even for an http:// endpoint"}
		}
	}
	return checkTLSFiles(signal)
}

// warnSDKDisabled warns about an OTEL_SDK_DISABLED that is neither true
// nor false: the specification reads it as false, and asks for a warning.
func warnSDKDisabled() {
	warnEnum(envSDKDisabled, true, "false (the SDK stays enabled)", "true", "false")
}

// warnEnum warns when a set variable is not one of values. fold says
// whether the SDK compares case-insensitively (and ignores spaces).
func warnEnum(name string, fold bool, using string, values ...string) {
	v, set := lookup(name)
	if !set {
		return
	}
	for _, ok := range values {
		if v == ok || fold && strings.EqualFold(strings.TrimSpace(v), ok) {
			return
		}
	}
	otel.Handle(&EnvWarning{Name: name, Value: v, Supported: strings.Join(values, ", "), Using: using})
}

// checkMillis checks a duration in milliseconds as the SDK parses it: a
// positive integer, without a unit.
func checkMillis(name, def string) error {
	v, set := lookup(name)
	if !set {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/int64(time.Millisecond) {
		return &EnvError{Name: name, Value: v, Supported: "a positive whole number of milliseconds, no unit", Instead: def}
	}
	return nil
}

// checkEndpoint requires a URL with an http or https scheme and a host.
// The SDK reads "127.0.0.1:4317" as a malformed URL and "localhost:4317"
// as scheme "localhost", and then exports somewhere else than meant.
func checkEndpoint(name string) error {
	v, set := lookup(name)
	if !set {
		return nil
	}
	u, err := url.Parse(v)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	if err == nil && (u.Scheme == "unix" || u.Scheme == "unix-abstract") && u.Path != "" {
		return nil // a gRPC socket, which the SDK dials as given
	}
	supported := "a URL with scheme and host, e.g. http://collector:4317 (plain text) or https://collector:4317 (TLS)"
	if err == nil && u.Scheme != "" && u.Opaque != "" && !strings.Contains(v, "//") {
		// host:port read as scheme:opaque.
		supported += "; did you mean http://" + v + "?"
	} else if err != nil && !strings.Contains(v, "://") {
		supported += "; did you mean http://" + v + "?"
	}
	instead := "localhost:4317 (gRPC) or localhost:4318 (HTTP)"
	if err == nil && u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		instead = "" // it would dial something, with TLS, and fail later
	}
	return &EnvError{Name: name, Value: v, Supported: supported, Instead: instead}
}

// checkHeaders checks key=value pairs, values URL-encoded. The SDK drops
// a malformed pair and logs the raw value, a secret; here the value is
// never shown.
func checkHeaders(name string) error {
	v, set := lookup(name)
	if !set {
		return nil
	}
	for i, pair := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		problem := ""
		switch {
		case !ok:
			problem = "has no '='"
		case strings.TrimSpace(k) == "" || strings.ContainsAny(strings.TrimSpace(k), " \t\"(),/:;<=>?@[\\]{}"):
			problem = "has an invalid header name"
		default:
			if _, err := url.PathUnescape(val); err != nil {
				problem = "has a value that is not URL-encoded properly"
			}
		}
		if problem != "" {
			return &EnvError{Name: name, Value: "<not shown>",
				Supported: fmt.Sprintf("key=value pairs separated by commas, values URL-encoded; pair %d %s", i+1, problem),
				Instead:   "the headers without that pair"}
		}
	}
	return nil
}

// checkResourceAttributes checks key=value pairs. The SDK keeps the good
// pairs and reports the others through otel.Handle twice per provider
// (once for the default resource, once for the merge): one error here
// instead.
func checkResourceAttributes() error {
	v, set := lookup(envResourceAttrs)
	if !set {
		return nil
	}
	var bad []string
	for pair := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		if _, err := url.PathUnescape(strings.TrimSpace(val)); !ok || strings.TrimSpace(k) == "" || err != nil {
			bad = append(bad, strconv.Quote(pair))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &EnvError{Name: envResourceAttrs, Value: v,
		Supported: "key=value pairs separated by commas, values URL-encoded; not pairs: " + strings.Join(bad, ", "),
		Instead:   "the other pairs"}
}
