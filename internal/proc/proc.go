// Package proc names this process in a way other processes on the same
// host can check for liveness: host/pid/start time. A record or lease
// left by a process that died (kill -9) can then be taken over at once
// instead of after a timeout.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Self names this process: host/pid/start.
func Self() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return fmt.Sprintf("%s/%d/%s", host, pid, procStart(pid))
}

// Alive reports whether the process named by owner (as Self writes it,
// possibly followed by more "/"-separated parts) still runs. An owner on
// another host is assumed alive: only a lease expiry can tell. So is
// every owner where there is no /proc to ask (hosts other than Linux:
// see procStart).
func Alive(owner string) bool {
	if !canCheck {
		return owner != ""
	}
	if owner == "" {
		return false
	}
	parts := strings.Split(owner, "/")
	if len(parts) < 3 {
		return false
	}
	host, _ := os.Hostname()
	if parts[0] != host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return false
	}
	start := procStart(pid)
	return start != "" && start == parts[2]
}
