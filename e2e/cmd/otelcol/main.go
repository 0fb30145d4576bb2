// Command otelcol is a small OpenTelemetry Collector distribution built from
// pinned upstream modules. The end-to-end tests run it with the repository's
// collector-config.yaml, so the configuration they prove is the one shipped
// for docker compose (where the contrib image runs the same components).
//
// It is also the distribution of the pgmq receiver
// (collector/pgmqreceiver), which samples PGMQ queue depths for programs in
// any language: merge collector/pgmq-receiver.yaml on top of the shipped
// configuration, or see the README's "Queue depth without Go, in three
// steps". Dockerfile builds it as an image.
//
// Components: otlp and pgmq receivers; memory_limiter, batch and
// cumulativetodelta processors; debug, otlp_grpc (alias otlp), otlp_http
// (alias otlphttp) and prometheus exporters. Config sources: file:, env:
// and yaml: URIs.
//
//	go build -o otelcol ./cmd/otelcol
//	./otelcol --config ../collector-config.yaml
//	./otelcol validate --config ../collector-config.yaml --config ../collector/tempo.yaml
//	PGMQ_DATABASE_URL=postgres://... ./otelcol --config ../collector-config.yaml --config ../collector/pgmq-receiver.yaml
package main

import (
	"fmt"
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/cumulativetodeltaprocessor"
	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

// version is reported by --version; it names the core release the build pins.
const version = "0.165.0-pgmqotel"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol",
		Description: "pgmqotel collector: OTLP in, Prometheus and OTLP out, and the pgmq receiver",
		Version:     version,
	}
	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					fileprovider.NewFactory(),
					envprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				// ${NAME} without a scheme reads the environment, as in the
				// contrib image; --config takes a bare path as a file.
				DefaultScheme: "env",
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// factories lists the components this distribution understands.
func factories() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		otlpreceiver.NewFactory(),
		pgmqreceiver.NewFactory(),
	); err != nil {
		return f, fmt.Errorf("receivers: %w", err)
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		batchprocessor.NewFactory(),
		memorylimiterprocessor.NewFactory(),
		cumulativetodeltaprocessor.NewFactory(),
	); err != nil {
		return f, fmt.Errorf("processors: %w", err)
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		debugexporter.NewFactory(),
		otlpexporter.NewFactory(),
		otlphttpexporter.NewFactory(),
		prometheusexporter.NewFactory(),
	); err != nil {
		return f, fmt.Errorf("exporters: %w", err)
	}
	// The service's own telemetry (logs, internal metrics) needs a factory
	// since the telemetry settings moved out of the service package.
	f.Telemetry = otelconftelemetry.NewFactory()
	return f, nil
}
