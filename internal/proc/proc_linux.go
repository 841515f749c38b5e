//go:build linux

package proc

import (
	"os"
	"strconv"
	"strings"
)

// canCheck: /proc tells whether a process runs, and since when.
const canCheck = true

// procStart is the start time of a process in clock ticks since boot
// (field 22 of /proc/PID/stat), which tells a live process from a later
// one that reuses its pid. Empty when unknown.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	// The command name (field 2) may contain spaces; fields after it
	// start behind the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}
