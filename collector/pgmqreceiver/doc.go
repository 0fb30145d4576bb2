// Package pgmqreceiver is an OpenTelemetry Collector receiver that samples
// the depth of PGMQ queues in any number of PostgreSQL databases, for
// programs not written in Go: it emits the metrics package otelmetrics
// emits in process (pgmq.queue.depth, pgmq.queue.oldest_message.age,
// pgmq.queue.sent.messages, pgmq.sampler.errors), with the same units and
// attributes, server.address, server.port and db.namespace telling the
// databases apart.
//
// Each database is sampled by a queuesampler.Sampler on a connection of
// its own, with the election across replicas of package queuesampler: any
// number of Collector replicas (and Go programs sampling the same queues
// in process) sample each database once per interval. README.md is the
// configuration reference; metadata.yaml declares the metrics and
// documentation.md lists them.
//
// The module is separate from github.com/pgmqotel/pgmqotel, so the
// Collector's dependencies never enter the library's.
package pgmqreceiver // import "github.com/pgmqotel/pgmqotel/collector/pgmqreceiver"

// The Collector's metadata generator would write internal/metadata and
// documentation.md from metadata.yaml; they are written by hand in its
// shape, and TestMetadataMatchesBuilder keeps them in step.
//go:generate mdatagen metadata.yaml
