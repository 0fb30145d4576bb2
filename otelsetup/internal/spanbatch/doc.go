// Package spanbatch is a span processor that exports ended, sampled spans
// in batches from a background goroutine, like the SDK's
// BatchSpanProcessor, and with the same four settings (schedule delay,
// export timeout, queue size, batch size) and defaults.
//
// It differs in one thing: how a span reaches the goroutine. The SDK's
// processor sends every span over a channel to a goroutine that waits on
// it, so every ended span wakes that goroutine, and the wake-up (a futex
// call, another thread scheduled) lands on the caller's path: measured on
// a PGMQ Send over loopback, 2.5 to 4 % of the call (BENCHMARKS.md, bar 6).
// Here OnEnd appends the span to a slice under a mutex, and the goroutine
// wakes only when a batch is full, when the schedule delay has passed, or
// for ForceFlush and Shutdown: once per 512 spans by default instead of
// once per span.
//
// A full queue drops the span rather than block the application; drops
// are counted and reported through otel.Handle at the next export.
package spanbatch
