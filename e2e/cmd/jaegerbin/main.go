// Command jaegerbin builds the Jaeger v2 binary the end-to-end tests use
// (from e2e/tools/jaeger, into the user's cache directory, as
// stack.JaegerBinary does) unless it is already there, and prints its path.
// CI runs it before the tests, so the cold build (minutes) is outside the
// tests' timeout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := stack.JaegerBinary(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jaegerbin:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
