package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
)

func newImport(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Store the node definitions of a file, replacing those of the same types",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			defs, err := descr.LoadNodeDefs(args[0], e.loadOptions())
			if err != nil {
				return e.descrFailure(err)
			}
			e.warnings(defs.Warnings)
			cfg, err := e.config()
			if err != nil {
				return err
			}
			st, err := e.openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			m, err := occopus.New(occopus.Options{Store: st, Home: cfg.Home, Log: e.log})
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.ImportNodeDefs(cmd.Context(), defs); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "imported %d node type(s) from %s: %s\n", len(defs.Types), args[0], strings.Join(defs.Types, ", "))
			return nil
		},
	}
}

// descrFailure prints every description error on stderr, one per line,
// and returns exit status 1.
func (e *env) descrFailure(err error) error {
	for _, de := range descr.AsErrors(err) {
		fmt.Fprintln(e.stderr, cleanLine(de.Error()))
	}
	return &ExitError{Code: 1}
}

// warnings prints the warnings of a file on stderr, one per line.
func (e *env) warnings(ws descr.Errors) {
	for _, w := range ws {
		fmt.Fprintln(e.stderr, cleanLine(w.Error()))
	}
}

func newValidate(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check infrastructure descriptions, node definitions and auth_data files, reporting every error",
		Long: `Check infrastructure descriptions, node definition files and auth_data.yaml
files (told apart by their content). Every error is printed on stderr as FILE:LINE:COLUMN: KEY PATH:
MESSAGE; the exit status is 1 when any file has an error.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// No store: validating touches nothing but the files.
			m, err := occopus.New(occopus.Options{Log: e.log, MaxDescriptionBytes: e.loadOptions().MaxBytes})
			if err != nil {
				return err
			}
			defer m.Close()
			failed := false
			for _, f := range args {
				v, err := m.Validate(cmd.Context(), f)
				if err != nil {
					failed = true
					for _, de := range descr.AsErrors(err) {
						fmt.Fprintln(e.stderr, cleanLine(de.Error()))
					}
					continue
				}
				e.warnings(v.Warnings)
				fmt.Fprintf(e.stdout, "%s: ok (%s)\n", f, v.Summary)
				for _, n := range v.Notes {
					fmt.Fprintf(e.stdout, "  %s\n", n)
				}
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}
