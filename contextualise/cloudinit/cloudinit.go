// Package cloudinit renders cloud-init user data (`type: cloudinit`).
package cloudinit

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/occopus-go/occopus/contextualise"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	contextualise.Register(contextualise.Plugin{Type: "cloudinit", New: func() contextualise.Contextualiser { return Contextualiser{} },
		Schema: &descr.Schema{Fields: []descr.Field{
			{Key: "context_template", Required: true, Type: descr.OneOf(descr.String, descr.AnyMap)},
			{Key: "attributes", Type: descr.AnyMap},
		}}})
}

// Header starts cloud-config user data.
const Header = "#cloud-config"

// Contextualiser renders `context_template`. A mapping (what !yaml_import
// of a cloud-config file gives) has each string rendered in place and is
// then written as YAML after a #cloud-config line; a string is rendered as
// text. Occopus instead dumps the mapping to YAML first and renders that
// text, which breaks where the emitter escapes quotes inside a template.
type Contextualiser struct{}

// Resolve implements contextualise.Contextualiser.
func (Contextualiser) Resolve(path string, section map[string]any, r contextualise.Renderer) (map[string]any, resource.Context, error) {
	out := map[string]any{}
	for k, v := range section {
		if k != "context_template" {
			out[k] = v
		}
	}
	var userData string
	switch t := section["context_template"].(type) {
	case string:
		v, err := r.Render(path+".context_template", t)
		if err != nil {
			return nil, resource.Context{}, err
		}
		userData = v.(string)
	case map[string]any:
		v, err := r.Render(path+".context_template", t)
		if err != nil {
			return nil, resource.Context{}, err
		}
		text, err := Marshal(v)
		if err != nil {
			return nil, resource.Context{}, fmt.Errorf("%s.context_template: %w", path, err)
		}
		userData = text
	case nil:
	default:
		return nil, resource.Context{}, fmt.Errorf("%s.context_template: must be a string or a mapping, not %T", path, t)
	}
	if err := Check(userData); err != nil {
		return nil, resource.Context{}, fmt.Errorf("%s.context_template: rendered %w", path, err)
	}
	if a, ok := section["attributes"]; ok {
		v, err := r.Render(path+".attributes", a)
		if err != nil {
			return nil, resource.Context{}, err
		}
		out["attributes"] = v
	}
	out["context"] = userData
	return out, resource.Context{UserData: userData}, nil
}

// Marshal writes a cloud-config mapping as user data.
func Marshal(v any) (string, error) {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Check parses rendered user data that claims to be cloud-config, so a
// template that produced broken YAML fails here, with the line, instead of
// silently inside the VM.
func Check(userData string) error {
	if !strings.HasPrefix(userData, Header) {
		return nil
	}
	var v any
	if err := yaml.Unmarshal([]byte(userData), &v); err != nil {
		return fmt.Errorf("cloud-config is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if v != nil {
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("cloud-config must be a YAML mapping, not %T", v)
		}
	}
	return nil
}

var _ contextualise.Contextualiser = Contextualiser{}
