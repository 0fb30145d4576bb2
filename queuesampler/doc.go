// Package queuesampler samples the PGMQ queues of one database for as long
// as a program runs: on a connection of its own, opened the way the
// application's pool opens its connections, so pool saturation never
// delays a sample and a sample never takes a connection from the
// application; once across all the replicas that share the database (the
// holder of a lease row elected on the database's clock, see
// internal/election); at most once per minimum interval however many
// readers ask; bounded by a sample timeout; counting every failure by
// error type and reporting each distinct one once.
//
// It is what package otelmetrics turns into asynchronous instruments, and
// what the Collector receiver (collector/pgmqreceiver) turns into
// Collector metrics: both read the same Sample. One Sampler covers one
// database; sample several by making several.
//
// Package queuedepth takes each sample; this package decides when, where
// and whether to.
package queuesampler
