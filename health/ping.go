package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/occopus-go/occopus/descr"
)

// Defaults of the ping primitive.
const (
	DefaultPingTimeout  = 2 * time.Second
	DefaultPingCount    = 3                      // packets sent; one reply is enough
	DefaultPingInterval = 500 * time.Millisecond // so all packets fit in the timeout
)

func init() {
	Register(Plugin{Type: "ping", Schema: descr.Bool, New: newPingProbes})
}

// PingProbe sends ICMP echo requests to Target.Addr and passes as soon as
// any reply arrives.
type PingProbe struct {
	Timeout  time.Duration // default DefaultPingTimeout
	Count    int           // default DefaultPingCount
	Interval time.Duration // default DefaultPingInterval
}

// newPingProbes: `ping: true` gives one probe, `ping: false` none. Build
// supplies true when the key is absent (Occopus pings by default).
func newPingProbes(v any) ([]Probe, error) {
	on, ok := v.(bool)
	if !ok {
		return nil, fmt.Errorf("want true or false, got %T (%v)", v, v)
	}
	if !on {
		return nil, nil
	}
	return []Probe{&PingProbe{Timeout: DefaultPingTimeout, Count: DefaultPingCount, Interval: DefaultPingInterval}}, nil
}

// Socket modes. Raw ICMP sockets ("privileged") need root or CAP_NET_RAW;
// unprivileged ICMP datagram sockets need net.ipv4.ping_group_range to
// include our group. Which one works is only known by trying, so the first
// mode that opens a socket is remembered for later probes.
const (
	modeUnknown int32 = iota
	modePrivileged
	modeUnprivileged
)

var pingMode atomic.Int32

// pingModes is the order to try: the remembered mode, else raw first when
// root (it needs no sysctl), else datagram first.
func pingModes() []int32 {
	switch m := pingMode.Load(); m {
	case modePrivileged, modeUnprivileged:
		return []int32{m}
	}
	if os.Geteuid() == 0 {
		return []int32{modePrivileged, modeUnprivileged}
	}
	return []int32{modeUnprivileged, modePrivileged}
}

// errNoICMP means no ICMP socket could be opened in either mode.
var errNoICMP = errors.New("cannot open an ICMP socket (raw needs root/CAP_NET_RAW; datagram needs net.ipv4.ping_group_range)")

func (p *PingProbe) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	r := Result{Primitive: "ping"}
	if t.Addr == "" {
		return fail(r, start, "ping: target has no address")
	}
	timeout := orDefault(p.Timeout, DefaultPingTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stats, err := ping(ctx, t.Addr, p, timeout)
	if err != nil {
		return fail(r, start, "ping %s: %v", t.Addr, err)
	}
	if stats.PacketsRecv == 0 {
		return fail(r, start, "ping %s: no reply to %d packets within %v", t.Addr, stats.PacketsSent, timeout)
	}
	return pass(r, start, "ping %s: reply in %v", t.Addr, stats.MinRtt)
}

func ping(ctx context.Context, addr string, p *PingProbe, timeout time.Duration) (*probing.Statistics, error) {
	count := p.Count
	if count <= 0 {
		count = DefaultPingCount
	}
	interval := orDefault(p.Interval, DefaultPingInterval)
	var errs []error
	for _, mode := range pingModes() {
		pg := probing.New(addr)
		pg.Count, pg.Interval, pg.Timeout = count, interval, timeout
		pg.ResolveTimeout = timeout
		pg.SetPrivileged(mode == modePrivileged)
		if err := pg.Resolve(); err != nil {
			return nil, err // resolving doesn't depend on the socket mode
		}
		pg.OnRecv = func(*probing.Packet) { pg.Stop() } // one reply is enough
		if err := pg.RunWithContext(ctx); err != nil {
			// Resolution already succeeded, so an error here is the socket
			// (listen) failing: try the other mode.
			errs = append(errs, fmt.Errorf("%s: %w", modeName(mode), err))
			continue
		}
		pingMode.CompareAndSwap(modeUnknown, mode)
		return pg.Statistics(), nil
	}
	return nil, fmt.Errorf("%w: %w", errNoICMP, errors.Join(errs...))
}

func modeName(m int32) string {
	if m == modePrivileged {
		return "raw socket"
	}
	return "datagram socket"
}
