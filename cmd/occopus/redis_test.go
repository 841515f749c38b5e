package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestRedisStoreThroughTheCLI builds the local example with the state in
// Redis, configured the way Occopus configures it (components: uds:).
func TestRedisStoreThroughTheCLI(t *testing.T) {
	addr := os.Getenv("OCCOPUS_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OCCOPUS_TEST_REDIS_ADDR is not set under CI (scripts/services.sh redis)")
		}
		t.Skip("no Redis: run `eval \"$(scripts/services.sh redis)\"` first")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	cfg := fmt.Sprintf("components:\n  uds: !UDS\n    protocol: redis\n    host: %s\n    port: %s\n    password: %q\n    prefix: \"test-%s:\"\n",
		host, port, os.Getenv("OCCOPUS_TEST_REDIS_PASS"), uuid.NewString())
	if err := os.WriteFile(filepath.Join(home, "occopus_config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := "../../examples/local-ping/"
	if _, stderr, code := run(t, "import", ex+"nodes.yaml"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	stdout, stderr, code := run(t, "build", ex+"infra.yaml")
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	id := lines[len(lines)-1]
	t.Cleanup(func() { run(t, "destroy", "-i", id) })
	if out, _, _ := run(t, "maintain", "-l"); !strings.Contains(out, id) {
		t.Fatalf("maintain -l does not list %s:\n%s", id, out)
	}
	if _, stderr, code := run(t, "destroy", "-i", id); code != 0 {
		t.Fatalf("destroy: %s", stderr)
	}
	if out, _, _ := run(t, "maintain", "-l"); strings.Contains(out, id) {
		t.Fatalf("destroyed infrastructure still listed:\n%s", out)
	}
}
