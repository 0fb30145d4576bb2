package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// usage is the text of -h: scripts/stack.sh is how a person runs devstack
// (its binary is a temporary file).
func usage(out io.Writer, fs *flag.FlagSet) func() {
	return func() {
		fmt.Fprint(out, `Usage: scripts/stack.sh [flags]

Runs the demo pipeline on 127.0.0.1 without Docker: the OpenTelemetry Collector,
Prometheus, Jaeger (unless -jaeger=false or -backend) and, with -orchestrator, the
example orchestrator. Without DATABASE_URL, -orchestrator runs on a throwaway
PostgreSQL cluster of its own (the server's initdb; removed at exit) with PGMQ from
-pgmq-sql, else the pgmq extension, else the project's PGMQ-compatible schema.
Ctrl-C stops everything; the logs stay in -dir.

Flags:
`)
		fs.PrintDefaults()
	}
}

// placeholderService stands for the user's service name in the
// environment printed for their own program.
const placeholderService = "your-service-name"

// appEnv is the environment for the user's own program: the OTLP
// variables, an export interval the collector's metric_expiration suits,
// and OTEL_SERVICE_NAME from the caller's environment or a placeholder.
func appEnv(otlp []string) (env []string, service string) {
	service = os.Getenv("OTEL_SERVICE_NAME")
	if service == "" {
		service = placeholderService
	}
	env = append(append([]string(nil), otlp...), "OTEL_METRIC_EXPORT_INTERVAL=5000", "OTEL_SERVICE_NAME="+service)
	return env, service
}

// banner is what devstack prints once everything is up.
type banner struct {
	Dir                          string
	GRPCAddr, HTTPAddr, PromAddr string
	PromURL                      string
	Traces                       *traceBackend
	OTLPEnv                      []string
	DB                           *pgServer // the throwaway cluster, nil with DATABASE_URL
	PGMQ                         pgmqState // with -orchestrator
	Orchestrator                 bool
}

// String renders the banner.
func (b banner) String() string {
	env, service := appEnv(b.OTLPEnv)
	traceService := service
	if service == placeholderService && b.Orchestrator {
		traceService = "orchestrator"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "pgmqotel dev stack is up (logs in %s, kept on exit)\n", b.Dir)
	fmt.Fprintf(&s, "  collector OTLP      grpc %s, http %s\n", b.GRPCAddr, b.HTTPAddr)
	fmt.Fprintf(&s, "  traces              %s\n", b.Traces.describe(traceService))
	fmt.Fprintf(&s, "  app metrics         http://%s/metrics\n", b.PromAddr)
	fmt.Fprintf(&s, "  Prometheus          %s (alerts: %s/alerts)\n", b.PromURL, b.PromURL)
	if b.DB != nil {
		fmt.Fprintf(&s, "  PostgreSQL          throwaway, %s (PGMQ: %s; log %s; removed at exit)\n", b.DB.URL, b.PGMQ.How, b.DB.LogPath)
	}
	fmt.Fprintf(&s, "  your application    %s\n", strings.Join(env, " "))
	if service == placeholderService {
		fmt.Fprintf(&s, "                      (OTEL_SERVICE_NAME: your program's name, its job label in Prometheus and its service in traces")
		if b.Orchestrator {
			fmt.Fprintf(&s, `; the orchestrator started here is "orchestrator"`)
		}
		fmt.Fprintf(&s, ")\n")
	}
	return s.String()
}
