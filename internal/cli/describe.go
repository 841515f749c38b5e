package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/store"
)

func newImport(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Store the node definitions of a file, replacing those of the same types",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			defs, err := descr.LoadNodeDefs(args[0], descr.LoadOptions{})
			if err != nil {
				return e.descrFailure(err)
			}
			cfg, err := e.config()
			if err != nil {
				return err
			}
			st, err := e.openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			m, err := occopus.New(occopus.Options{Store: st, Home: cfg.Home})
			if err != nil {
				return err
			}
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
		fmt.Fprintln(e.stderr, de.Error())
	}
	return &ExitError{Code: 1}
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
			failed := false
			for _, f := range args {
				summary, err := validateFile(f)
				if err != nil {
					failed = true
					for _, de := range descr.AsErrors(err) {
						fmt.Fprintln(e.stderr, de.Error())
					}
					continue
				}
				fmt.Fprintf(e.stdout, "%s: ok (%s)\n", f, summary)
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

func validateFile(path string) (string, error) {
	root, err := descr.ParseFile(path, descr.LoadOptions{})
	if err != nil {
		return "", err
	}
	switch descr.Detect(root) {
	case descr.InfraFile:
		in, err := descr.DecodeInfra(path, root)
		if err != nil {
			return "", err
		}
		st, err := compile.Compile(in)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("infrastructure %q: %d node(s) in %d level(s)", st.Name, len(st.Nodes), len(st.Levels)), nil
	case descr.NodeDefFile:
		defs, err := descr.DecodeNodeDefs(path, root)
		if err != nil {
			return "", err
		}
		n := 0
		for _, t := range defs.Types {
			n += len(defs.Impls[t])
		}
		return fmt.Sprintf("node definitions: %d type(s), %d implementation(s)", len(defs.Types), n), nil
	}
	if root.Get("resource") != nil || root.Get("config_management") != nil {
		ad, err := auth.FromTree(path, root)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("auth_data: entries for resource types %s", strings.Join(ad.Types(auth.SectionResource), ", ")), nil
	}
	return "", &descr.Error{Pos: root.Pos, Msg: "neither an infrastructure description (with infra_name and nodes), a node definition file (with 'node_def:TYPE' keys) nor auth_data (with resource or config_management lists)"}
}

// loadDefs gathers the implementations of the types an infrastructure
// uses: from the given node definition files, else from the store. A type
// found nowhere is an error naming the node that uses it.
func (e *env) loadDefs(ctx context.Context, st *compile.Static, files []string) (map[string][]*descr.Impl, error) {
	out := map[string][]*descr.Impl{}
	var errs descr.Errors
	for _, f := range files {
		defs, err := descr.LoadNodeDefs(f, descr.LoadOptions{})
		if err != nil {
			errs = append(errs, descr.AsErrors(err)...)
			continue
		}
		for _, t := range defs.Types {
			out[t] = defs.Impls[t]
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var missing []*compile.Node
	for _, n := range st.Nodes {
		if _, ok := out[n.Type]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 && len(files) == 0 {
		cfg, err := e.config()
		if err != nil {
			return nil, err
		}
		s, err := e.openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		var still []*compile.Node
		for _, n := range missing {
			if _, ok := out[n.Type]; ok {
				continue
			}
			impls, err := engine.Implementations(ctx, s, n.Type)
			if errors.Is(err, store.ErrNotFound) {
				still = append(still, n)
				continue
			}
			if err != nil {
				return nil, err
			}
			out[n.Type] = impls
		}
		missing = still
	}
	for _, n := range missing {
		if _, ok := out[n.Type]; ok {
			continue
		}
		where := "in the store (import it with `occopus import FILE`)"
		if len(files) > 0 {
			known := make([]string, 0, len(out))
			for t := range out {
				known = append(known, t)
			}
			sort.Strings(known)
			where = fmt.Sprintf("in %s (types there: %s)", strings.Join(files, ", "), strings.Join(known, ", "))
		}
		errs = append(errs, &descr.Error{Pos: n.Desc.Src.Get("type").Pos, Path: n.Desc.Path + ".type",
			Msg: fmt.Sprintf("node type %q has no definition %s", n.Type, where)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
