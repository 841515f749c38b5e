package rest_test

// Docker infrastructures driven over HTTP. These tests need a Docker
// engine and the docker CLI (to look behind the orchestrator's back);
// without them they skip, except with CI=true, where they fail. They build
// the test images themselves (images/build.sh, idempotent) and remove every
// container labelled with their infrastructure ids when they end.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"
)

// dockerNodeDefs: a container of the test image occopus/busybox-helloworld
// (no registry: images/build.sh imports it).
const dockerNodeDefs = `
'node_def:rest_docker':
  - resource:
      type: docker
      origin: local
      image: occopus/busybox-helloworld
      tag: latest
    contextualisation:
      type: docker
      env: ["message=hello from {{ node_id }}"]
      command: ["/root/start.sh"]
    health_check:
      ping: false
`

const dockerInfraYAML = `infra_name: rest-docker
nodes:
  - name: web
    type: rest_docker
    scaling: {min: 1, max: 4}
`

// needOrSkip skips with msg, or fails under CI=true.
func needOrSkip(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: required)")
	}
	t.Skip(msg)
}

// repoRoot is the repository, found from this file's path.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository from the test source")
	}
	return filepath.Join(filepath.Dir(file), "..")
}

var (
	dockerOnce    sync.Once
	dockerMissing string // why Docker cannot be used; "" when it can
	dockerImgErr  error
)

// requireDocker skips (fails under CI=true) without a Docker engine and
// CLI, and builds the test images once per test binary.
func requireDocker(t testing.TB) {
	t.Helper()
	dockerOnce.Do(func() {
		if _, err := exec.LookPath("docker"); err != nil {
			dockerMissing = "no docker CLI on PATH"
			return
		}
		if _, err := dockerCmd("version", "--format", "{{.Server.Version}}"); err != nil {
			dockerMissing = "no Docker engine answers: " + err.Error()
			return
		}
		cmd := exec.Command("sh", filepath.Join(repoRoot(t), "images", "build.sh"))
		if out, err := cmd.CombinedOutput(); err != nil {
			dockerImgErr = fmt.Errorf("images/build.sh: %v\n%s", err, out)
		}
	})
	if dockerMissing != "" {
		needOrSkip(t, dockerMissing)
	}
	if dockerImgErr != nil {
		t.Fatal(dockerImgErr)
	}
}

func dockerCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// containersOf lists the containers (any state) of an infrastructure,
// optionally of one node id.
func containersOf(t testing.TB, infraID string, nodeID ...string) []string {
	t.Helper()
	args := []string{"ps", "-aq", "--filter", "label=occopus.infra_id=" + infraID}
	for _, n := range nodeID {
		args = append(args, "--filter", "label=occopus.node_id="+n)
	}
	out, err := dockerCmd(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// containerNodeIDs maps node id -> number of containers carrying it.
func containerNodeIDs(t testing.TB, infraID string) map[string]int {
	t.Helper()
	out, err := dockerCmd("ps", "-a", "--filter", "label=occopus.infra_id="+infraID, "--format", `{{.Label "occopus.node_id"}}`)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, id := range strings.Fields(out) {
		ids[id]++
	}
	return ids
}

// sweepContainers removes whatever is left of an infrastructure.
func sweepContainers(t testing.TB, infraID string) {
	out, err := dockerCmd("ps", "-aq", "--filter", "label=occopus.infra_id="+infraID)
	if err != nil {
		t.Logf("sweep: %v", err)
		return
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		t.Logf("sweep: removing %d containers of %s", len(ids), infraID)
		if _, err := dockerCmd(append([]string{"rm", "-f"}, ids...)...); err != nil {
			t.Logf("sweep: %v", err)
		}
	}
}

// importDefs stores node definitions through a Manager.
func importDefs(t testing.TB, st store.Store, yaml string) {
	t.Helper()
	root, err := descr.Parse("nodes.yaml", []byte(yaml), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defs, err := descr.DecodeNodeDefs("nodes.yaml", root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := occopus.New(occopus.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.ImportNodeDefs(context.Background(), defs); err != nil {
		t.Fatal(err)
	}
}

// TestDockerLifecycle drives a Docker infrastructure entirely over HTTP
// and checks the engine's containers (by label) after every step.
func TestDockerLifecycle(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	f := newFixture(t)
	importDefs(t, f.st, dockerNodeDefs)
	_, hs := f.server(t, nil)

	id := create(t, hs.URL, dockerInfraYAML)
	t.Cleanup(func() { sweepContainers(t, id) })
	u := hs.URL + "/infrastructures/" + id
	// sameAsReport: the containers are exactly the report's instances.
	sameAsReport := func(r report) bool {
		got := containerNodeIDs(t, id)
		if len(got) != len(r["web"].Instances) {
			return false
		}
		for nid := range r["web"].Instances {
			if got[nid] != 1 {
				return false
			}
		}
		return true
	}

	rep := waitFor(t, hs.URL, id, "1 ready container", func(r report) bool { return r.ready("web") == 1 && sameAsReport(r) })
	for _, in := range rep["web"].Instances {
		if in.ResourceAddress == "" {
			t.Fatalf("no address: %+v", rep)
		}
	}

	expect(t, call(t, "POST", u+"/scaleup/web", ""), 200)
	rep = waitFor(t, hs.URL, id, "2 ready containers", func(r report) bool {
		return r.ready("web") == 2 && len(r["web"].Instances) == 2 && sameAsReport(r)
	})

	// Scale down a named instance: that very container goes.
	var victim string
	for nid := range rep["web"].Instances {
		victim = nid
	}
	v := expect(t, call(t, "POST", u+"/scaledown/web/"+victim, ""), 200)
	if v["nodeid"] != victim {
		t.Fatalf("scaledown %v", v)
	}
	waitFor(t, hs.URL, id, "the named instance gone", func(r report) bool {
		_, still := r["web"].Instances[victim]
		return !still && r.ready("web") == 1 && len(r["web"].Instances) == 1 && sameAsReport(r)
	})
	if c := containersOf(t, id, victim); len(c) != 0 {
		t.Fatalf("the scaled-down instance's container remains: %v", c)
	}

	expect(t, call(t, "POST", u+"/scaleto/web/3", ""), 200)
	rep = waitFor(t, hs.URL, id, "3 ready containers", func(r report) bool {
		return r.ready("web") == 3 && r["web"].Scaling.Target == 3 && len(r["web"].Instances) == 3 && sameAsReport(r)
	})

	// Detached, a container removed behind its back stays removed.
	expect(t, call(t, "POST", u+"/detach", ""), 200)
	time.Sleep(300 * time.Millisecond) // a pass in flight ends
	for nid := range rep["web"].Instances {
		victim = nid
	}
	if _, err := dockerCmd(append([]string{"rm", "-f"}, containersOf(t, id, victim)...)...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // 15 intervals of an attached infrastructure
	if n := len(containersOf(t, id)); n != 2 {
		t.Fatalf("detached: %d containers, want 2 (nothing heals)", n)
	}

	// Attached again, it is healed: a new instance replaces the removed one.
	expect(t, call(t, "POST", u+"/attach", ""), 200)
	waitFor(t, hs.URL, id, "healed after attach", func(r report) bool {
		_, still := r["web"].Instances[victim]
		return !still && r.ready("web") == 3 && len(r["web"].Instances) == 3 && sameAsReport(r)
	})

	v = expect(t, call(t, "DELETE", u, ""), 200)
	if v["infraid"] != id {
		t.Fatal(v)
	}
	if left := containersOf(t, id); len(left) != 0 {
		t.Fatalf("containers left after DELETE: %v", left)
	}
	expect(t, call(t, "GET", u, ""), 404)
}
