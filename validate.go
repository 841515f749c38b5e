package occopus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/internal/config"
)

// Validated says what a checked file is and what it holds.
type Validated struct {
	// Kind is "infrastructure", "node definitions", "auth_data",
	// "configuration" or "cloud-init".
	Kind string
	// Summary is the one-line account `occopus validate` prints.
	Summary string
	// Notes say more about the file (for a configuration, what of it is
	// used and what is ignored), one line each.
	Notes []string
	// Warnings are problems that do not stop the file being used (an
	// optional key left empty), each with its place.
	Warnings descr.Errors
}

// withWarnings adds warnings to the errors of a later check, so that a
// file with both shows both, in file order.
func withWarnings(err error, warns descr.Errors) error {
	if len(warns) == 0 {
		return err
	}
	return append(descr.AsErrors(err), warns...).Err()
}

// Validate checks a file, telling by its content whether it is an
// infrastructure description, node definitions or auth_data: keys and
// value types of every section against the plugins of this build,
// templates, dependencies, cycles and scaling. Every problem is reported,
// as descr.Errors naming file, line, column and key path. It touches
// neither the store nor any backend.
func (m *Manager) Validate(ctx context.Context, path string) (*Validated, error) {
	if src, err := os.ReadFile(path); err == nil {
		switch {
		case config.IsConfig(src):
			return validateConfig(path)
		case descr.IsCloudInit(src):
			n, err := descr.CheckCloudInit(path)
			if err != nil {
				return nil, err
			}
			return &Validated{Kind: "cloud-init", Summary: fmt.Sprintf("cloud-init template: %d template tag(s), YAML once rendered", n)}, nil
		}
	}
	root, err := descr.ParseFile(path, descr.LoadOptions{MaxBytes: m.opt.MaxDescriptionBytes})
	if err != nil {
		return nil, err
	}
	switch descr.Detect(root) {
	case descr.InfraFile:
		in, err := descr.DecodeInfra(path, root)
		if err != nil {
			return nil, err
		}
		st, err := compile.Compile(in)
		if err != nil {
			return nil, withWarnings(err, in.Warnings)
		}
		if err := engine.CheckLimits(st, m.opt.Limits); err != nil {
			return nil, withWarnings(err, in.Warnings)
		}
		return &Validated{Kind: "infrastructure", Warnings: in.Warnings, Summary: fmt.Sprintf("infrastructure %q: %d node(s) in %d level(s)", st.Name, len(st.Nodes), len(st.Levels))}, nil
	case descr.NodeDefFile:
		defs, err := descr.DecodeNodeDefs(path, root)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, t := range defs.Types {
			n += len(defs.Impls[t])
		}
		return &Validated{Kind: "node definitions", Warnings: defs.Warnings, Summary: fmt.Sprintf("node definitions: %d type(s), %d implementation(s)", len(defs.Types), n)}, nil
	}
	if root.Get("resource") != nil || root.Get("config_management") != nil {
		ad, err := auth.FromTree(path, root)
		if err != nil {
			return nil, err
		}
		return &Validated{Kind: "auth_data", Summary: fmt.Sprintf("auth_data: entries for resource types %s", strings.Join(ad.Types(auth.SectionResource), ", "))}, nil
	}
	return nil, &descr.Error{Pos: root.Pos, Msg: "neither an infrastructure description (with infra_name and nodes), a node definition file (with 'node_def:TYPE' keys) nor auth_data (with resource or config_management lists)"}
}

// validateConfig checks an occopus_config.yaml, ours or Occopus's own,
// and notes what it uses and what it ignores.
func validateConfig(path string) (*Validated, error) {
	r, err := config.Inspect(path)
	var fes config.FieldErrors
	if errors.As(err, &fes) {
		var out descr.Errors
		for _, fe := range fes {
			out = append(out, &descr.Error{Pos: descr.Pos{File: fe.File, Line: fe.Line, Col: fe.Col}, Path: fe.Key, Msg: fe.Msg})
		}
		return nil, out.Err()
	}
	if err != nil {
		return nil, err
	}
	v := &Validated{Kind: "configuration", Summary: fmt.Sprintf("configuration: %d setting(s) used, %d of Occopus's ignored", len(r.Used), len(r.Ignored))}
	v.Notes = append(v.Notes, "uses: "+orNone(r.Used))
	for _, ig := range r.Ignored {
		v.Notes = append(v.Notes, "ignores "+ig)
	}
	return v, nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "nothing (defaults apply)"
	}
	return strings.Join(list, ", ")
}
