package puppetsolo

import (
	"testing"

	"github.com/occopus-go/occopus/configmgr"
)

type identity struct{}

func (identity) Render(_ string, v any) (any, error) { return v, nil }

// The `puppet` names are what Occopus offers: items joined by spaces, each
// written as Python's str() writes it.
func TestResolveOffersPuppetNames(t *testing.T) {
	sec := map[string]any{
		"type":       "puppet_solo",
		"modules":    []any{"puppetlabs-mysql", "hunner-wordpress"},
		"manifests":  []any{"https://example.com/a.pp"},
		"attributes": []any{map[string]any{"dbuser": "wp"}, map[string]any{"port": 3306, "ssl": true}},
	}
	_, data, err := Resolve("config_management", sec, identity{})
	if err != nil {
		t.Fatal(err)
	}
	p := data["puppet"].(map[string]any)
	want := map[string]string{
		"modules":    "puppetlabs-mysql hunner-wordpress",
		"manifests":  "https://example.com/a.pp",
		"attributes": "{'dbuser': 'wp'} {'port': 3306, 'ssl': True}",
	}
	for k, w := range want {
		if p[k] != w {
			t.Errorf("puppet.%s = %q, want %q", k, p[k], w)
		}
	}
}

// TestNewHasNothingToDo: puppet_solo has no server; its Manager
// implements no lifecycle interface, so the engine asks it nothing.
func TestNewHasNothingToDo(t *testing.T) {
	m, err := New(configmgr.Config{Section: map[string]any{"type": "puppet_solo", "manifests": []any{"site.pp"}}})
	if err != nil {
		t.Fatal(err)
	}
	switch m.(type) {
	case configmgr.InfraPreparer, configmgr.Registrar, configmgr.Reporter, configmgr.NodeDropper, configmgr.InfraDropper:
		t.Errorf("%T implements a lifecycle interface", m)
	}
	if m.String() == "" {
		t.Error("no description")
	}
}
