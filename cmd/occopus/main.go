// Command occopus builds, maintains, scales and destroys virtual
// infrastructures described in Occopus's YAML files. The same binary
// answers to the names of the original commands (occopus-build, ...).
//
// main only maps errors to exit codes; every command is reachable through
// Run for tests. Everything the commands do goes through occopus.Manager.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/occopus-go/occopus/plugins/standard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
