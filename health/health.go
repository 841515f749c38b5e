// Package health runs the health checks of node instances. Each primitive
// (ping, ports, urls, mysqldbs, ...) is registered under its key in the
// `health_check` section; a node is ready when every configured primitive
// passes.
package health

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
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

// Factory builds the probes of one primitive from the value under its key in
// the health_check section (e.g. the list of ports). It returns no probe when
// the value disables it (ping: false).
type Factory func(value any) ([]Probe, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a primitive available under its health_check key. It panics
// on an empty or duplicate name.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" || f == nil {
		panic("health: Register with empty name or nil factory")
	}
	if _, dup := factories[name]; dup {
		panic("health: duplicate registration of " + name)
	}
	factories[name] = f
}

// Primitives lists the registered primitive names, sorted.
func Primitives() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func factory(name string) (Factory, error) {
	// Look up under the lock but build the error after releasing it:
	// Primitives takes the read lock again, and a recursive RLock can
	// deadlock when a writer is waiting.
	mu.RLock()
	f, ok := factories[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("health check %q is not known (have: %v)", name, Primitives())
	}
	return f, nil
}
