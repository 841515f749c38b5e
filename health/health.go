// Package health runs the health checks of node instances. Each primitive
// (ping, ports, urls, mysqldbs, ...) is a Plugin registered once under its
// key in the `health_check` section; a node is ready when every configured primitive
// passes.
package health

import (
	"context"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/plugin"
)

// Status of one probe.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
)

// Result of one probe.
type Result struct {
	Primitive string        `json:"primitive"`
	Status    Status        `json:"status"`
	Output    string        `json:"output,omitempty"` // why it failed, or what it saw
	Time      time.Time     `json:"time"`
	Latency   time.Duration `json:"latency"`
}

// Target is the instance being checked.
type Target struct {
	// Addr is the instance's public address (the `ip` of url templates).
	Addr string
	// Data is the template data of the node (variables etc.) so that
	// primitives can render their settings with `ip` added.
	Data map[string]any
}

// Probe checks one aspect of one instance. Check must honour ctx and return
// within its own timeout.
type Probe interface {
	Check(ctx context.Context, t Target) Result
}

// Plugin is a health-check primitive: its key in the health_check
// section, the type of the key's value and its constructor.
type Plugin struct {
	// Type is the health_check key (ping, ports, urls, mysqldbs).
	Type string
	// Schema is the type of the key's value, e.g. descr.ListOf(descr.Int).
	Schema descr.Type
	// New builds the probes from the key's value (e.g. the list of ports);
	// no probe when the value disables the primitive (ping: false).
	New func(value any) ([]Probe, error)
}

// PluginID implements plugin.Plugin: "health_check.<key>".
func (p Plugin) PluginID() plugin.ID { return plugin.NewID(descr.SectionHealthCheck, p.Type) }

// Check implements plugin.Plugin.
func (p Plugin) Check() error {
	return plugin.Whole(descr.SectionHealthCheck, p.Type, !p.Schema.IsZero(), p.New != nil)
}

// KeyType implements descr.KeyPlugin.
func (p Plugin) KeyType() descr.Type { return p.Schema }

var _ descr.KeyPlugin = Plugin{}

// Register makes a primitive available under its health_check key. It
// panics on an empty or duplicate key, or a plugin without schema or
// constructor.
func Register(p Plugin) { plugin.Register(p) }

// Primitives lists the registered primitive names, sorted.
func Primitives() []string { return plugin.Names(descr.SectionHealthCheck) }

func factory(name string) (func(any) ([]Probe, error), error) {
	p, ok := plugin.Get[Plugin](plugin.NewID(descr.SectionHealthCheck, name))
	if !ok {
		return nil, fmt.Errorf("health check %q is not known (have: %v)", name, Primitives())
	}
	return p.New, nil
}
