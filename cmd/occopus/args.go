package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// needArgs accepts exactly the named arguments, and names the one missing
// (cobra's own message only counts them).
func needArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return fmt.Errorf("missing argument %s (usage: %s)", strings.Join(names[len(args):], " "), cmd.UseLine())
		}
		if len(args) > len(names) {
			return fmt.Errorf("unexpected argument %q: %s takes %s (usage: %s)", args[len(names)], cmd.Name(), strings.Join(names, " "), cmd.UseLine())
		}
		return nil
	}
}

// needSome accepts one or more of the named argument.
func needSome(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("missing argument %s (usage: %s)", name, cmd.UseLine())
		}
		return nil
	}
}

// atMost accepts the named argument or none.
func atMost(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("unexpected argument %q: %s takes at most one %s (usage: %s)", args[1], cmd.Name(), name, cmd.UseLine())
		}
		return nil
	}
}
