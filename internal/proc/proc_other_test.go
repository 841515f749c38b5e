//go:build !linux

package proc

import (
	"os"
	"testing"
)

// Without /proc every owner is taken for alive: only the lease's expiry
// ends a dead one's hold.
func TestAliveWithoutProc(t *testing.T) {
	host, _ := os.Hostname()
	for _, owner := range []string{Self(), host + "/1/1", "another-host/1/1"} {
		if !Alive(owner) {
			t.Errorf("Alive(%q) = false without /proc", owner)
		}
	}
	if Alive("") {
		t.Error(`Alive("") = true`)
	}
}
