package standard_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/contextualise"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/plugin"
	_ "github.com/occopus-go/occopus/plugins/standard"
	"github.com/occopus-go/occopus/resource"
)

// TestEveryPluginIsWhole lists every plugin of the standard build and
// fails if one lacks a constructor or a schema, is of a kind nothing
// reads, or is not the typed plugin of its kind (so validate would check
// a section that build cannot run, or the reverse).
func TestEveryPluginIsWhole(t *testing.T) {
	var ids []string
	for _, p := range plugin.All() {
		id := p.PluginID()
		ids = append(ids, string(id))
		if err := p.Check(); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		switch id.Kind() {
		case descr.SectionResource:
			rp, ok := p.(resource.Plugin)
			if !ok || rp.New == nil || rp.Schema == nil {
				t.Errorf("%s: not a resource.Plugin with New and Schema (%T)", id, p)
			}
			if got, ok := resource.Lookup(id.Name()); !ok || got.Type != rp.Type {
				t.Errorf("%s: resource.Lookup does not find it", id)
			}
		case descr.SectionContextualise:
			cp, ok := p.(contextualise.Plugin)
			if !ok || cp.New == nil || cp.Schema == nil {
				t.Errorf("%s: not a contextualise.Plugin with New and Schema (%T)", id, p)
			} else if c, err := contextualise.Get(id.Name()); err != nil || c == nil {
				t.Errorf("%s: contextualise.Get: %v", id, err)
			}
		case descr.SectionConfigManagement:
			mp, ok := p.(configmgr.Plugin)
			if !ok || mp.New == nil || mp.Schema == nil {
				t.Errorf("%s: not a configmgr.Plugin with New and Schema (%T)", id, p)
			} else if m, err := configmgr.Get(id.Name()); err != nil || m == nil {
				t.Errorf("%s: configmgr.Get: %v", id, err)
			}
		case descr.SectionHealthCheck:
			hp, ok := p.(health.Plugin)
			if !ok || hp.New == nil || hp.Schema.IsZero() {
				t.Errorf("%s: not a health.Plugin with New and Schema (%T)", id, p)
			}
		default:
			t.Errorf("%s: kind %q is read by nothing", id, id.Kind())
		}
	}
	// The standard set has at least these (a new plugin needs no edit here).
	for _, want := range []string{"config_management.chef", "config_management.puppet_solo",
		"contextualisation.cloudinit", "contextualisation.docker",
		"health_check.mysqldbs", "health_check.ping", "health_check.ports", "health_check.urls",
		"resource.docker", "resource.ec2", "resource.local", "resource.nova"} {
		if !slices.Contains(ids, want) {
			t.Errorf("%s is not registered (registered: %s)", want, strings.Join(ids, ", "))
		}
	}
}
