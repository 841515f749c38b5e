package health

import (
	"context"
	"errors"
	"testing"
)

func TestPingLoopback(t *testing.T) {
	// Probe socket support first, so a sandbox without ICMP skips with the
	// reason instead of failing. ping() tries raw then datagram sockets.
	if _, err := ping(context.Background(), "127.0.0.1", &PingProbe{Count: 1}, DefaultPingTimeout); errors.Is(err, errNoICMP) {
		t.Skipf("ICMP not permitted here: %v", err)
	}
	tests := []struct {
		name string
		addr string
		want Status
	}{
		{"loopback answers", "127.0.0.1", Pass},
		{"other loopback address answers", "127.0.0.2", Pass},
		{"no address", "", Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := newPingProbes(true)
			if err != nil || len(ps) != 1 {
				t.Fatalf("newPingProbes(true) = %v, %v", ps, err)
			}
			r := ps[0].Check(context.Background(), Target{Addr: tt.addr})
			if r.Status != tt.want || r.Primitive != "ping" {
				t.Fatalf("got %+v, want %s", r, tt.want)
			}
			t.Logf("%s (mode %s)", r.Output, modeName(pingMode.Load()))
		})
	}
}

func TestPingFalse(t *testing.T) {
	ps, err := newPingProbes(false)
	if err != nil || len(ps) != 0 {
		t.Fatalf("ping false: %v, %v", ps, err)
	}
}
