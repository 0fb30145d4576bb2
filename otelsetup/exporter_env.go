package otelsetup

import (
	"os"
	"strings"
)

// Exporter names accepted in OTEL_METRICS_EXPORTER (all four) and
// OTEL_TRACES_EXPORTER (all but prometheus).
const (
	ExporterOTLP       = "otlp"
	ExporterPrometheus = "prometheus"
	ExporterConsole    = "console"
	ExporterNone       = "none"
)

// OTLP transport protocols, spelled as in OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Variables read by this package itself rather than by the SDK.
const (
	envSDKDisabled     = "OTEL_SDK_DISABLED"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envMetricsProtocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// exporterList is an OTEL_*_EXPORTER variable, read and checked.
type exporterList struct {
	names map[string]bool // the names given, in lower case; never "none"
	// exact is the value when it is exactly one name as the specification
	// spells it, else "". autoexport reads only such values.
	exact string
}

// has reports whether name was given.
func (l exporterList) has(name string) bool { return l.names[name] }

// readExporters reads an OTEL_*_EXPORTER variable the way the
// specification writes it: a comma-separated list of names, in any case,
// with spaces around them; unset or blank means otlp, and "none" next to
// other names adds nothing. A name not in valid fails with an *EnvError
// naming the variable and the value and listing the valid names (contrib's
// autoexport reads one exact name, and its error names neither). Metrics
// and traces read theirs here alike.
func readExporters(name string, valid ...string) (exporterList, error) {
	v, set := lookup(name)
	if !set || strings.TrimSpace(v) == "" {
		return exporterList{names: map[string]bool{ExporterOTLP: true}, exact: ExporterOTLP}, nil
	}
	l := exporterList{names: map[string]bool{}}
	for item := range strings.SplitSeq(v, ",") {
		n := strings.ToLower(strings.TrimSpace(item))
		if !contains(valid, n) {
			return exporterList{}, &EnvError{Name: name, Value: v,
				Supported: "a comma-separated list of " + strings.Join(valid, ", ")}
		}
		if n != ExporterNone {
			l.names[n] = true
		}
	}
	if contains(valid, v) {
		l.exact = v
	}
	return l, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// otlpProtocol picks a signal's OTLP protocol: its own variable
// (OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, _TRACES_PROTOCOL), then
// OTEL_EXPORTER_OTLP_PROTOCOL, then gRPC. Other values (http/json has no
// Go exporter) fail with an *EnvError.
func otlpProtocol(signalVar string) (string, error) {
	for _, name := range []string{signalVar, envProtocol} {
		v := os.Getenv(name)
		if strings.TrimSpace(v) == "" {
			continue
		}
		switch p := strings.ToLower(strings.TrimSpace(v)); p {
		case ProtocolGRPC, ProtocolHTTPProtobuf:
			return p, nil
		default:
			return "", &EnvError{Name: name, Value: v, Supported: ProtocolGRPC + ", " + ProtocolHTTPProtobuf}
		}
	}
	return ProtocolGRPC, nil
}

// sdkDisabled reads OTEL_SDK_DISABLED as the specification's boolean: only
// "true", in any case, is true.
func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(envSDKDisabled)), "true")
}
