package health

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/occopus-go/occopus/descr"
)

// DefaultPortTimeout bounds one TCP connect of the ports primitive.
const DefaultPortTimeout = 2 * time.Second

func init() {
	Register(Plugin{Type: "ports", Schema: descr.ListOf(descr.Int), New: newPortProbes})
}

// PortProbe passes when a TCP connection to Target.Addr:Port succeeds.
type PortProbe struct {
	Port    int
	Timeout time.Duration // default DefaultPortTimeout
}

func newPortProbes(v any) ([]Probe, error) {
	l, err := asList(v)
	if err != nil {
		return nil, err
	}
	out := make([]Probe, 0, len(l))
	for _, e := range l {
		p, err := parsePort(e)
		if err != nil {
			return nil, err
		}
		out = append(out, &PortProbe{Port: p, Timeout: DefaultPortTimeout})
	}
	return out, nil
}

func parsePort(v any) (int, error) {
	var p int
	switch n := v.(type) {
	case int:
		p = n
	case int64:
		p = int(n)
	case uint64:
		p = int(n)
	case float64:
		p = int(n)
		if float64(p) != n {
			return 0, fmt.Errorf("port %v is not an integer", n)
		}
	case string:
		var err error
		if p, err = strconv.Atoi(n); err != nil {
			return 0, fmt.Errorf("port %q is not a number", n)
		}
	default:
		return 0, fmt.Errorf("port %v: want a number, got %T", v, v)
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", p)
	}
	return p, nil
}

func (p *PortProbe) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	r := Result{Primitive: "ports"}
	if t.Addr == "" {
		return fail(r, start, "port %d: target has no address", p.Port)
	}
	addr := net.JoinHostPort(t.Addr, strconv.Itoa(p.Port))
	d := net.Dialer{Timeout: orDefault(p.Timeout, DefaultPortTimeout)}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(r, start, "port %d: %v", p.Port, err)
	}
	c.Close()
	return pass(r, start, "port %d: connected to %s", p.Port, addr)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// pass and fail fill in status, output and latency (measured with the real
// monotonic clock: latency is a duration, not a timestamp).
func pass(r Result, start time.Time, format string, a ...any) Result {
	r.Status, r.Output, r.Latency = Pass, fmt.Sprintf(format, a...), time.Since(start)
	return r
}

func fail(r Result, start time.Time, format string, a ...any) Result {
	r.Status, r.Output, r.Latency = Fail, fmt.Sprintf(format, a...), time.Since(start)
	return r
}
