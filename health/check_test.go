package health

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeProbe returns a fixed status, optionally after a delay.
type fakeProbe struct {
	status Status
	delay  time.Duration
}

func (p fakeProbe) Check(ctx context.Context, t Target) Result {
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return Result{Status: Fail, Output: ctx.Err().Error()}
	}
	return Result{Status: p.status, Output: t.Addr}
}

func names(c *Check) []string {
	var out []string
	for _, p := range c.Probes {
		out = append(out, p.Name)
	}
	return out
}

func TestPrimitivesRegistered(t *testing.T) {
	got := strings.Join(Primitives(), ",")
	if got != "mysqldbs,ping,ports,urls" {
		t.Fatalf("Primitives() = %s", got)
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name        string
		section     map[string]any
		wantProbes  string // comma-joined probe names
		wantTimeout time.Duration
		wantErr     string // substring; "" means no error
	}{
		{name: "nil section pings by default", section: nil, wantProbes: "ping", wantTimeout: DefaultTimeout},
		{name: "empty section pings by default", section: map[string]any{}, wantProbes: "ping", wantTimeout: DefaultTimeout},
		{name: "ping false yields no probe", section: map[string]any{"ping": false}, wantProbes: "", wantTimeout: DefaultTimeout},
		{name: "ping true", section: map[string]any{"ping": true}, wantProbes: "ping", wantTimeout: DefaultTimeout},
		{name: "timeout int seconds", section: map[string]any{"ping": false, "timeout": 30}, wantProbes: "", wantTimeout: 30 * time.Second},
		{name: "timeout float seconds", section: map[string]any{"ping": false, "timeout": 1.5}, wantProbes: "", wantTimeout: 1500 * time.Millisecond},
		{name: "all primitives, sorted, ping added", section: map[string]any{
			"urls":     []any{"http://{{ip}}/"},
			"ports":    []any{22, "80"},
			"mysqldbs": []any{map[string]any{"name": "db", "user": "u", "pass": "p"}},
		}, wantProbes: "mysqldbs,ping,ports,ports,urls", wantTimeout: DefaultTimeout},
		{name: "type basic accepted and ignored", section: map[string]any{"type": "basic"}, wantProbes: "ping", wantTimeout: DefaultTimeout},
		{name: "unknown key names it", section: map[string]any{"pingg": true}, wantErr: `"pingg"`},
		{name: "ping not bool", section: map[string]any{"ping": "yes"}, wantErr: "ping"},
		{name: "timeout not number", section: map[string]any{"timeout": "10"}, wantErr: "timeout"},
		{name: "timeout negative", section: map[string]any{"timeout": -1}, wantErr: "timeout"},
		{name: "port out of range", section: map[string]any{"ports": []any{70000}}, wantErr: "out of range"},
		{name: "port not a number", section: map[string]any{"ports": []any{"http"}}, wantErr: "not a number"},
		{name: "url not string", section: map[string]any{"urls": []any{42}}, wantErr: "urls"},
		{name: "mysql unknown field", section: map[string]any{"mysqldbs": []any{map[string]any{"name": "d", "user": "u", "pasword": "x"}}}, wantErr: `"pasword"`},
		{name: "mysql missing user", section: map[string]any{"mysqldbs": []any{map[string]any{"name": "d"}}}, wantErr: "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Build(tt.section)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got := strings.Join(names(c), ","); got != tt.wantProbes {
				t.Errorf("probes = %q, want %q", got, tt.wantProbes)
			}
			if c.Timeout != tt.wantTimeout {
				t.Errorf("Timeout = %v, want %v", c.Timeout, tt.wantTimeout)
			}
		})
	}
}

func TestBuildProbeDefaults(t *testing.T) {
	c, err := Build(map[string]any{
		"ports":    []any{8080},
		"urls":     []any{"http://x/"},
		"mysqldbs": []any{map[string]any{"name": "d", "user": "u"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, np := range c.Probes {
		switch p := np.Probe.(type) {
		case *PingProbe:
			if p.Timeout != 2*time.Second || p.Count != DefaultPingCount {
				t.Errorf("ping defaults: %+v", p)
			}
		case *PortProbe:
			if p.Timeout != 2*time.Second || p.Port != 8080 {
				t.Errorf("port defaults: %+v", p)
			}
		case *URLProbe:
			if p.Timeout != 5*time.Second {
				t.Errorf("url defaults: %+v", p)
			}
		case *MySQLProbe:
			if p.Timeout != 5*time.Second || p.Port != "3306" || p.Host != "" {
				t.Errorf("mysql defaults: %+v", p)
			}
		default:
			t.Errorf("unexpected probe %T", p)
		}
	}
}

func TestRun(t *testing.T) {
	clk := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name    string
		probes  []Status
		healthy bool
	}{
		{name: "all pass", probes: []Status{Pass, Pass, Pass}, healthy: true},
		{name: "one fails", probes: []Status{Pass, Fail, Pass}, healthy: false},
		{name: "no probes", probes: nil, healthy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Check{Timeout: 10 * time.Second, Clock: clk}
			for i, s := range tt.probes {
				// Equal delays: run concurrently this takes ~delay, not n*delay.
				c.Probes = append(c.Probes, NamedProbe{Name: string(rune('a' + i)), Probe: fakeProbe{status: s, delay: 200 * time.Millisecond}})
			}
			start := time.Now()
			rs := c.Run(context.Background(), Target{Addr: "127.0.0.1"})
			if el := time.Since(start); len(tt.probes) > 1 && el > 500*time.Millisecond {
				t.Errorf("Run took %v; probes did not run concurrently", el)
			}
			if len(rs) != len(tt.probes) {
				t.Fatalf("got %d results, want %d", len(rs), len(tt.probes))
			}
			for i, r := range rs {
				if r.Status != tt.probes[i] || r.Primitive != string(rune('a'+i)) {
					t.Errorf("result %d = %+v (order or name lost)", i, r)
				}
				if !r.Time.Equal(clk.Now()) {
					t.Errorf("result %d Time = %v, want injected clock %v", i, r.Time, clk.Now())
				}
			}
			if got := Healthy(rs); got != tt.healthy {
				t.Errorf("Healthy = %v, want %v", got, tt.healthy)
			}
		})
	}
}

type panicProbe struct{}

func (panicProbe) Check(context.Context, Target) Result { panic("boom") }

func TestRunRecoversPanic(t *testing.T) {
	c := &Check{Probes: []NamedProbe{{Name: "bad", Probe: panicProbe{}}, {Name: "good", Probe: fakeProbe{status: Pass}}}}
	rs := c.Run(context.Background(), Target{})
	if rs[0].Status != Fail || !strings.Contains(rs[0].Output, "boom") || rs[0].Primitive != "bad" || rs[1].Status != Pass {
		t.Fatalf("results %+v", rs)
	}
}

func TestRunHonoursContext(t *testing.T) {
	c := &Check{Probes: []NamedProbe{{Name: "slow", Probe: fakeProbe{status: Pass, delay: time.Hour}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rs := c.Run(ctx, Target{})
	if Healthy(rs) {
		t.Fatalf("cancelled run is healthy: %+v", rs)
	}
}
