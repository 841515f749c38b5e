package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/config"
)

func newImport(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "import FILE",
		Short:   "Store the node definitions of a file, replacing those of the same types",
		Example: "  occopus import nodes/node_definitions.yaml",
		Args:    needArgs("NODE_DEFINITION_FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wrongKind(args[0], "import"); err != nil {
				return err
			}
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

// wrongKind tells a user who gave a command the wrong kind of file which
// kind it is and which command takes it; nil when the file is of the
// command's kind or cannot be told (its own errors are reported then).
func wrongKind(path, command string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	kind, takes := "", ""
	switch {
	case config.IsConfig(src):
		kind, takes = "an occopus_config.yaml", "is read with --cfg or from $OCCOPUS_HOME (check it with `occopus validate`)"
	case descr.IsCloudInit(src):
		kind, takes = "a cloud-init template", "is used by a node definition's contextualisation (context_template: !text_import {url: file://...})"
	default:
		root, err := descr.Parse(path, src, descr.LoadOptions{})
		if err != nil {
			return nil
		}
		switch descr.Detect(root) {
		case descr.InfraFile:
			kind, takes = "an infrastructure description (infra_name, nodes)", "is built with `occopus build "+path+"`"
		case descr.NodeDefFile:
			kind, takes = "a node definition file ('node_def:TYPE' keys)", "is stored with `occopus import "+path+"`"
		default:
			if root.Get("resource") != nil || root.Get("config_management") != nil {
				kind, takes = "an auth_data file", "is read with --auth_data_path or from $OCCOPUS_HOME/auth_data.yaml"
			}
		}
	}
	want := map[string]string{"import": "a node definition file", "build": "an infrastructure description"}[command]
	if kind == "" || strings.HasPrefix(kind, want) {
		return nil
	}
	return fmt.Errorf("%s is %s, which %s; %s takes %s", path, kind, takes, command, want)
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
		Example: `  occopus validate infra-docker-ping.yaml nodes/node_definitions.yaml
  occopus validate ~/.occopus/occopus_config.yaml ~/.occopus/auth_data.yaml
  occopus validate infra-docker-ping.yaml   # node types checked against the store`,
		Args: needSome("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// No store: validating touches nothing but the files.
			m, err := occopus.New(occopus.Options{Log: e.log, MaxDescriptionBytes: e.loadOptions().MaxBytes})
			if err != nil {
				return err
			}
			defer m.Close()
			failed := false
			var infras []string
			var defs []*descr.NodeDefs
			for _, f := range args {
				v, err := m.Validate(cmd.Context(), f)
				if err != nil {
					failed = true
					for _, de := range descr.AsErrors(err) {
						fmt.Fprintln(e.stderr, cleanLine(de.Error()))
					}
					continue
				}
				switch v.Kind {
				case "infrastructure":
					infras = append(infras, f)
				case "node definitions":
					if d, err := descr.LoadNodeDefs(f, e.loadOptions()); err == nil {
						defs = append(defs, d)
					}
				}
				e.warnings(v.Warnings)
				fmt.Fprintf(e.stdout, "%s: ok (%s)\n", f, v.Summary)
				for _, n := range v.Notes {
					fmt.Fprintf(e.stdout, "  %s\n", n)
				}
			}
			if !failed && len(infras) > 0 {
				failed = !e.validateTogether(cmd.Context(), infras, defs)
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

// validateTogether checks each infrastructure description against the
// node definitions given (or, when none is, the store's): every node type
// defined, every filter left with an implementation, every name a
// template uses defined. It reports whether all passed.
func (e *env) validateTogether(ctx context.Context, infras []string, defs []*descr.NodeDefs) bool {
	opt := occopus.Options{Log: e.log, MaxDescriptionBytes: e.loadOptions().MaxBytes}
	if len(defs) == 0 {
		cfg, err := e.config()
		if err != nil {
			fmt.Fprintf(e.stderr, "occopus: node types not checked: %v\n", cleanText(err.Error()))
			return false
		}
		if cfg.Store.Protocol == "sqlite" && !fileExists(cfg.Store.Path) {
			fmt.Fprintf(e.stdout, "node types, filters and templates not checked: no node definition file given and no store at %s (give the node definition files too)\n", cfg.Store.Path)
			return true
		}
		st, err := e.openStore(ctx, cfg)
		if err != nil {
			fmt.Fprintf(e.stderr, "occopus: node types not checked: %v\n", cleanText(err.Error()))
			return false
		}
		defer st.Close()
		opt.Store = st
	}
	m, err := occopus.New(opt)
	if err != nil {
		fmt.Fprintf(e.stderr, "occopus: %v\n", err)
		return false
	}
	defer m.Close()
	ok := true
	for _, f := range infras {
		in, err := descr.LoadInfra(f, e.loadOptions())
		if err != nil {
			continue // reported above
		}
		r, err := m.Render(ctx, occopus.RenderRequest{Infra: in, NodeDefs: defs})
		if err != nil {
			ok = false
			for _, de := range descr.AsErrors(err) {
				fmt.Fprintln(e.stderr, cleanLine(de.Error()))
			}
			continue
		}
		e.warnings(r.Warnings)
		fmt.Fprintf(e.stdout, "%s: node types, filters and templates ok with %s\n", f, r.Source)
	}
	return ok
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
