package health

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// DefaultTimeout is how long a node may fail its health check continuously
// before it is marked failed, when the section has no `timeout` key. Occopus
// uses 600 s too.
const DefaultTimeout = 600 * time.Second

// Clock tells the time; injected so that tests control it.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the wall clock, used when a Check has no Clock.
var SystemClock Clock = systemClock{}

// NamedProbe is a probe with the primitive key that built it.
type NamedProbe struct {
	Name  string // health_check key, e.g. "ports"
	Probe Probe
}

// Check is a node's health_check section turned into probes.
type Check struct {
	// Probes run concurrently by Run. Ping is included unless the section
	// says `ping: false` (Occopus pings by default).
	Probes []NamedProbe
	// Timeout is how long the node may fail continuously before it is
	// failed; default DefaultTimeout (600 s), from `timeout` in seconds.
	Timeout time.Duration
	// Clock stamps Result.Time; nil means SystemClock.
	Clock Clock
}

func (c *Check) now() time.Time {
	if c.Clock == nil {
		return SystemClock.Now()
	}
	return c.Clock.Now()
}

// Build turns a node's health_check section into a Check. A nil or empty
// section still yields the default ping probe. Keys are handled in sorted
// order so that the probe order is stable; an unknown key is an error naming
// it.
func Build(section map[string]any) (*Check, error) {
	c := &Check{Timeout: DefaultTimeout}
	keys := make([]string, 0, len(section)+1)
	for k := range section {
		keys = append(keys, k)
	}
	if _, ok := section["ping"]; !ok {
		keys = append(keys, "ping") // Occopus default: ping is on
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, present := section[k]
		if !present && k == "ping" {
			v = true
		}
		if k == "type" {
			continue // Occopus's `type: basic`: there is only one kind here
		}
		if k == "timeout" {
			d, err := parseSeconds(v)
			if err != nil {
				return nil, fmt.Errorf("health_check timeout: %w", err)
			}
			c.Timeout = d
			continue
		}
		f, err := factory(k)
		if err != nil {
			return nil, err
		}
		ps, err := f(v)
		if err != nil {
			return nil, fmt.Errorf("health_check %s: %w", k, err)
		}
		for _, p := range ps {
			c.Probes = append(c.Probes, NamedProbe{Name: k, Probe: p})
		}
	}
	return c, nil
}

// parseSeconds accepts the numbers YAML/JSON decoding may produce.
func parseSeconds(v any) (time.Duration, error) {
	var s float64
	switch n := v.(type) {
	case int:
		s = float64(n)
	case int64:
		s = float64(n)
	case uint64:
		s = float64(n)
	case float64:
		s = n
	default:
		return 0, fmt.Errorf("want a number of seconds, got %T (%v)", v, v)
	}
	if s <= 0 {
		return 0, fmt.Errorf("want a positive number of seconds, got %v", v)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// Run runs every probe concurrently against t and returns their results in
// probe order. Each Result.Time is the (injected) clock at the start of the
// round, so one round shares one timestamp.
func (c *Check) Run(ctx context.Context, t Target) []Result {
	start := c.now()
	out := make([]Result, len(c.Probes))
	var wg sync.WaitGroup
	for i, np := range c.Probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A buggy probe must fail its own check, not crash the
			// orchestrator that runs checks for every node.
			defer func() {
				if v := recover(); v != nil {
					out[i] = Result{Primitive: np.Name, Status: Fail, Output: fmt.Sprintf("probe panicked: %v", v), Time: start}
				}
			}()
			r := np.Probe.Check(ctx, t)
			if r.Primitive == "" {
				r.Primitive = np.Name
			}
			r.Time = start
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Healthy reports whether every result passed. No results is healthy: a
// section with `ping: false` and nothing else checks nothing.
func Healthy(rs []Result) bool {
	for _, r := range rs {
		if r.Status != Pass {
			return false
		}
	}
	return true
}
