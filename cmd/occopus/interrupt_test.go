package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// cancelOn cancels a context when what is written to it holds a string:
// a Ctrl-C at a known moment of a command.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	when   string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.when) {
		w.cancel()
	}
	return len(p), nil
}

// TestBuildInterruptExit130: Ctrl-C during build rolls back what was made
// and exits 130, as a shell reports SIGINT.
func TestBuildInterruptExit130(t *testing.T) {
	t.Setenv("OCCOPUS_HOME", t.TempDir())
	ex := "../../examples/local-ping/"
	if _, stderr, code := run(t, "import", ex+"nodes.yaml"); code != 0 {
		t.Fatal(stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOn{when: "creating", cancel: cancel}
	var stdout bytes.Buffer
	code := Run(ctx, "occopus", []string{"build", ex + "infra.yaml"}, strings.NewReader(""), &stdout, stderr)
	if code != 130 || !strings.Contains(stderr.buf.String(), "interrupted: rolled back") {
		t.Fatalf("exit %d, want 130 after the rollback\n%s", code, stderr.buf.String())
	}
	out, _, _ := run(t, "maintain", "-l")
	if strings.Count(strings.TrimSpace(out), "\n") > 0 {
		t.Errorf("the interrupted build left an infrastructure:\n%s", out)
	}
}
