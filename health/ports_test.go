package health

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// closedPort returns a loopback port that nothing listens on (bound, then
// released).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func TestPortProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accept and drop, so connects complete cleanly
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name string
		addr string
		port any
		want Status
	}{
		{"open port", "127.0.0.1", open, Pass},
		{"open port as string", "127.0.0.1", strconv.Itoa(open), Pass},
		{"closed port", "127.0.0.1", closedPort(t), Fail},
		{"no address", "", open, Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := newPortProbes([]any{tt.port})
			if err != nil {
				t.Fatal(err)
			}
			ps[0].(*PortProbe).Timeout = time.Second
			r := ps[0].Check(context.Background(), Target{Addr: tt.addr})
			if r.Status != tt.want || r.Primitive != "ports" {
				t.Fatalf("got %+v, want %s", r, tt.want)
			}
		})
	}
}

func TestPortsThroughBuild(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Build(map[string]any{"ping": false, "ports": []any{l.Addr().(*net.TCPAddr).Port, closedPort(t)}})
	if err != nil {
		t.Fatal(err)
	}
	rs := c.Run(context.Background(), Target{Addr: "127.0.0.1"})
	if len(rs) != 2 || rs[0].Status != Pass || rs[1].Status != Fail || Healthy(rs) {
		t.Fatalf("results %+v", rs)
	}
}
