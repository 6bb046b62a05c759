// Command patchgate turns AWS patching into reviewed, staged, verified code.
// Everything lives in internal/; this file only wires the process to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/patchgate/patchgate/internal/cli"
)

func main() {
	// SIGINT, SIGTERM and SIGHUP cancel the context; commands that patch use
	// it to cancel in-flight work and write a partial result.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Main(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
