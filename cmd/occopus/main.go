// Command occopus builds, maintains, scales and destroys virtual
// infrastructures described in Occopus's YAML files. The same binary
// answers to the names of the original commands (occopus-build, ...).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/occopus-go/occopus/internal/cli"
	_ "github.com/occopus-go/occopus/plugins/standard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
