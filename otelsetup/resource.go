package otelsetup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/resource"
	// The SDK's resource detectors use this version; the same one keeps
	// merged resources free of schema URL conflicts.
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newResource detects the resource; later sources win over earlier ones, so
// the environment overrides the defaults and WithResource overrides all.
// Both providers build theirs here, so metrics and traces describe the
// same process.
func newResource(ctx context.Context, override *resource.Resource) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(defaultServiceName()),
			semconv.ServiceInstanceID(instanceID()),
		),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
		resource.WithSchemaURL(semconv.SchemaURL),
	)
	if err != nil {
		if res == nil {
			return nil, fmt.Errorf("otelsetup: detect resource: %w", err)
		}
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry costs that entry,
		// not the telemetry: keep what was detected and report the rest.
		otel.Handle(fmt.Errorf("otelsetup: detect resource: %w", err))
	}
	if override == nil {
		return res, nil
	}
	merged, err := resource.Merge(res, override)
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, fmt.Errorf("otelsetup: merge resource: %w", err)
	}
	// On a schema URL conflict merged has no schema URL but all attributes,
	// which is what the backend needs.
	return merged, nil
}

// defaultServiceName is the specification's fallback service.name.
func defaultServiceName() string {
	exe := "go"
	if len(os.Args) > 0 && os.Args[0] != "" {
		exe = filepath.Base(os.Args[0])
	}
	return "unknown_service:" + exe
}

// instanceID is this process's service.instance.id: a random (version 4)
// UUID, made once so every provider of the process reports the same one.
var instanceID = sync.OnceValue(func() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
})
