//go:build linux

package proc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestAlive(t *testing.T) {
	self := Self()
	host, _ := os.Hostname()
	// A process that has exited: its pid is no longer this start time.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := host + "/" + strconv.Itoa(cmd.Process.Pid) + "/1"
	cases := []struct {
		owner string
		want  bool
	}{
		{self, true},
		{self + "/some-manager-suffix", true},
		{dead, false},
		{host + "/" + strconv.Itoa(os.Getpid()) + "/0", false}, // our pid, another start time: pid reused
		{"another-host/1/1", true},                             // cannot tell: assumed alive
		{"", false},
		{"garbage", false},
	}
	for _, tc := range cases {
		if got := Alive(tc.owner); got != tc.want {
			t.Errorf("Alive(%q) = %v, want %v", tc.owner, got, tc.want)
		}
	}
	if parts := strings.Split(self, "/"); len(parts) != 3 || parts[2] == "" {
		t.Fatalf("Self() = %q, want host/pid/start", self)
	}
}
