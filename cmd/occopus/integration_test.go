package main

// Integration tests of the command line against real backends: Docker
// containers on the local engine and processes on this host (the local
// backend). Every test drives `occopus` as a user would — in process
// through Run, or as the built binary where signals are involved — with a
// private $OCCOPUS_HOME, and checks what the backends really hold.
//
// Docker tests skip when no engine answers, except with CI=true, where
// they fail. Everything a test makes is removed in t.Cleanup, by
// `occopus destroy` and then by a sweep of the infrastructure's labels
// (docker) or of the processes carrying its OCCOPUS_INFRA_ID (local).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const itestData = "testdata/integration"

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// itBackend is one resource backend under test: how to reach what it made
// behind the orchestrator's back.
type itBackend struct {
	name string
	// require skips (or under CI=true fails) the test when the backend
	// cannot run here, and prepares what it needs (images, busybox).
	require func(t *testing.T)
	// alive counts the instances of an infrastructure that exist at the
	// backend (containers in any state / distinct node ids of live
	// processes).
	alive func(t *testing.T, infraID string) int
	// kill removes one instance behind the orchestrator's back.
	kill func(t *testing.T, infraID, nodeID string)
	// output is what an instance printed.
	output func(t *testing.T, infraID, nodeID string) string
	// plant starts an instance of the infrastructure behind the
	// orchestrator's back, labelled as the backend labels its own.
	plant func(t *testing.T, infraID string)
	// sweep removes everything left of an infrastructure, returning what
	// it removed.
	sweep func(infraID string) []string
	// reply is what the sender's output holds once it reached the
	// receiver at addr.
	reply func(addr string) string
}

func (b itBackend) nodes() string { return filepath.Join(itestData, b.name, "nodes.yaml") }

func backends() []itBackend {
	return []itBackend{dockerBackend, localBackend}
}

// requireOrSkip skips with msg, or fails under CI=true.
func requireOrSkip(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: required)")
	}
	t.Skip(msg)
}

// ---------------------------------------------------------------- docker

var (
	dockerOnce sync.Once
	dockerErr  string // why docker cannot be used; "" when it can
	imagesErr  error
)

// imagesScript is the repository's images/build.sh.
func imagesScript(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository from the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "images", "build.sh")
}

func dockerCLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := dockerCLI(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var dockerBackend = itBackend{
	name: "docker",
	require: func(t *testing.T) {
		t.Helper()
		dockerOnce.Do(func() {
			if _, err := exec.LookPath("docker"); err != nil {
				dockerErr = "no docker CLI on PATH"
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if _, err := dockerCLI(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
				dockerErr = "no Docker engine answers: " + err.Error()
				return
			}
			// The test images; build.sh is idempotent.
			cmd := exec.Command("sh", imagesScript(t))
			if out, err := cmd.CombinedOutput(); err != nil {
				imagesErr = fmt.Errorf("images/build.sh: %v\n%s", err, out)
			}
		})
		if dockerErr != "" {
			requireOrSkip(t, dockerErr)
		}
		if imagesErr != nil {
			t.Fatal(imagesErr)
		}
	},
	alive: func(t *testing.T, infraID string) int {
		t.Helper()
		return len(containers(t, "occopus.infra_id="+infraID))
	},
	kill: func(t *testing.T, infraID, nodeID string) {
		t.Helper()
		ids := containers(t, "occopus.infra_id="+infraID, "occopus.node_id="+nodeID)
		if len(ids) != 1 {
			t.Fatalf("containers of node %s: %v, want one", nodeID, ids)
		}
		docker(t, "rm", "-f", ids[0])
	},
	output: func(t *testing.T, infraID, nodeID string) string {
		t.Helper()
		ids := containers(t, "occopus.infra_id="+infraID, "occopus.node_id="+nodeID)
		if len(ids) != 1 {
			t.Fatalf("containers of node %s: %v, want one", nodeID, ids)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "logs", ids[0])
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker logs %s: %v: %s", ids[0], err, out)
		}
		return string(out)
	},
	sweep: func(infraID string) []string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := dockerCLI(ctx, "ps", "-aq", "--filter", "label=occopus.infra_id="+infraID)
		if err != nil {
			return nil
		}
		ids := strings.Fields(out)
		if len(ids) > 0 {
			_, _ = dockerCLI(ctx, append([]string{"rm", "-f"}, ids...)...)
		}
		return ids
	},
	plant: func(t *testing.T, infraID string) {
		t.Helper()
		docker(t, "run", "-d", "--init", "--label", "occopus.infra_id="+infraID, "--label", "occopus.node_id=planted",
			"--label", "occopus.node_name=slow", "occopus/busybox:latest", "sleep", "3600")
	},
	reply: func(addr string) string { return "bytes from " + addr + ":" },
}

// containers lists the ids of containers (in any state) with every label.
func containers(t *testing.T, labels ...string) []string {
	t.Helper()
	args := []string{"ps", "-aq"}
	for _, l := range labels {
		args = append(args, "--filter", "label="+l)
	}
	return strings.Fields(docker(t, args...))
}

// ----------------------------------------------------------------- local

var (
	busyboxOnce sync.Once
	busyboxErr  error
)

var localBackend = itBackend{
	name: "local",
	require: func(t *testing.T) {
		t.Helper()
		if runtime.GOOS != "linux" {
			requireOrSkip(t, "the local backend needs /proc (linux)")
		}
		busyboxOnce.Do(func() {
			if _, err := exec.LookPath("busybox"); err == nil {
				return
			}
			// build.sh installs busybox-static; NO_DOCKER: tarballs only.
			cmd := exec.Command("sh", imagesScript(t))
			cmd.Env = append(os.Environ(), "NO_DOCKER=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				busyboxErr = fmt.Errorf("no busybox, and images/build.sh could not install it: %v\n%s", err, out)
			}
		})
		if busyboxErr != nil {
			t.Fatal(busyboxErr)
		}
	},
	alive: func(t *testing.T, infraID string) int {
		nodes := map[string]bool{}
		for _, p := range infraProcs(infraID) {
			nodes[p.nodeID] = true
		}
		return len(nodes)
	},
	kill: func(t *testing.T, infraID, nodeID string) {
		t.Helper()
		var pids []int
		for _, p := range infraProcs(infraID) {
			if p.nodeID == nodeID && p.leader {
				pids = append(pids, p.pid)
			}
		}
		if len(pids) != 1 {
			t.Fatalf("processes of node %s: %v, want one", nodeID, pids)
		}
		// The whole instance goes, as when its host loses it: its process
		// group (the backend starts each instance in a session of its own),
		// children included, which would otherwise outlive a killed shell.
		if err := syscall.Kill(-pids[0], syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 -%d: %v", pids[0], err)
		}
		eventually(t, 10*time.Second, func() (bool, string) {
			for _, p := range infraProcs(infraID) {
				if p.nodeID == nodeID {
					return false, fmt.Sprintf("process %d of node %s still there", p.pid, nodeID)
				}
			}
			return true, ""
		})
	},
	output: func(t *testing.T, infraID, nodeID string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(os.Getenv("OCCOPUS_HOME"), "local", infraID, nodeID+".log"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	},
	sweep: func(infraID string) []string {
		var out []string
		for _, p := range infraProcs(infraID) {
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				out = append(out, strconv.Itoa(p.pid))
			}
		}
		return out
	},
	plant: func(t *testing.T, infraID string) {
		t.Helper()
		cmd := exec.Command("sleep", "3600")
		cmd.Env = append(os.Environ(), "OCCOPUS_INFRA_ID="+infraID, "OCCOPUS_NODE_ID=planted",
			"OCCOPUS_NODE_NAME=slow", "OCCOPUS_IP=127.0.0.1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // as the backend starts its own
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
	},
	reply: func(addr string) string { return "reply from " + addr + "\n" },
}

type itProc struct {
	pid    int
	nodeID string
	leader bool
}

// infraProcs scans /proc for live (non-zombie) processes whose environment
// carries OCCOPUS_INFRA_ID=infraID.
func infraProcs(infraID string) []itProc {
	ents, _ := os.ReadDir("/proc")
	want := []byte("OCCOPUS_INFRA_ID=" + infraID)
	var out []itProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		p := itProc{pid: pid, leader: f[3] == e.Name()} // field 6: session id
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("OCCOPUS_NODE_ID=")); ok {
				p.nodeID = string(v)
			}
		}
		out = append(out, p)
	}
	return out
}

// --------------------------------------------------------------- helpers

// itHome gives the test a private, empty $OCCOPUS_HOME.
func itHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	return home
}

// occ runs the command line in process.
func occ(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	code = Run(ctx, "occopus", args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

// occOK runs the command line and fails the test unless it exits 0.
func occOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := occ(t, args...)
	if code != 0 {
		t.Fatalf("occopus %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// cleanupInfra destroys an infrastructure at the end of the test, sweeps
// what its labels still reach, and fails the test if anything was left.
func cleanupInfra(t *testing.T, b itBackend, id string) {
	t.Helper()
	t.Cleanup(func() {
		occ(t, "destroy", "-i", id) // may already be gone
		if left := b.sweep(id); len(left) > 0 {
			t.Errorf("cleanup: %d %s resource(s) of infrastructure %s survived `occopus destroy`: %v", len(left), b.name, id, left)
		}
	})
}

// build imports the backend's node definitions and builds an
// infrastructure, checking the exit status and that the last line of
// stdout is the new infrastructure's id.
func build(t *testing.T, b itBackend, infra string, extra ...string) string {
	t.Helper()
	occOK(t, "import", b.nodes())
	stdout, stderr, code := occ(t, append(append([]string{"build"}, extra...), filepath.Join(itestData, infra))...)
	if id := uuidRE.FindString(stderr); id != "" {
		cleanupInfra(t, b, id)
	}
	if code != 0 {
		t.Fatalf("build %s: exit %d\nstdout:\n%s\nstderr:\n%s", infra, code, stdout, stderr)
	}
	id := lastLine(stdout)
	if !uuidRE.MatchString(id) || len(id) != 36 {
		t.Fatalf("build %s: last line of stdout %q is not an infrastructure id\nstdout:\n%s", infra, id, stdout)
	}
	if !strings.Contains(stderr, id) {
		cleanupInfra(t, b, id)
	}
	return id
}

type itInstance struct {
	ResourceAddress string `json:"resource_address"`
	State           string `json:"state"`
}

type itNode struct {
	Instances map[string]itInstance `json:"instances"`
	Scaling   struct {
		Actual int `json:"actual"`
		Target int `json:"target"`
		Min    int `json:"min"`
		Max    int `json:"max"`
	} `json:"scaling"`
}

// checkShape fails unless v (decoded JSON) is an object with exactly the
// keys of want; nested objects are checked against nested wants, and "*"
// in want stands for any key.
func checkShape(t *testing.T, path string, v any, want map[string]any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Errorf("report %s: %T, want an object", path, v)
		return
	}
	if sub, ok := want["*"]; ok {
		for k, x := range m {
			if sw, ok := sub.(map[string]any); ok {
				checkShape(t, path+"."+k, x, sw)
			}
		}
		return
	}
	var got, exp []string
	for k := range m {
		got = append(got, k)
	}
	for k := range want {
		exp = append(exp, k)
	}
	sort.Strings(got)
	sort.Strings(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("report %s: keys %v, want %v", path, got, exp)
		return
	}
	for k, sub := range want {
		switch sw := sub.(type) {
		case map[string]any:
			checkShape(t, path+"."+k, m[k], sw)
		case string:
			switch sw {
			case "string":
				if _, ok := m[k].(string); !ok {
					t.Errorf("report %s.%s: %v, want a string", path, k, m[k])
				}
			case "number":
				if _, ok := m[k].(float64); !ok {
					t.Errorf("report %s.%s: %v, want a number", path, k, m[k])
				}
			}
		}
	}
}

var reportShape = map[string]any{"*": map[string]any{
	"instances": map[string]any{"*": map[string]any{"resource_address": "string", "state": "string"}},
	"scaling":   map[string]any{"actual": "number", "target": "number", "min": "number", "max": "number"},
}}

// maintain runs one maintenance pass with a JSON report and returns the
// report, checked against the REST shape.
func maintain(t *testing.T, id string, extra ...string) map[string]itNode {
	t.Helper()
	stdout, _ := occOK(t, append([]string{"maintain", "-i", id, "-r", "--format", "json"}, extra...)...)
	var raw any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("maintain -r --format json: %v\n%s", err, stdout)
	}
	checkShape(t, "", raw, reportShape)
	var rep map[string]itNode
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// checkNode checks a node of a report: n ready instances, scaling as given.
func checkNode(t *testing.T, rep map[string]itNode, node string, n, min, max int) []string {
	t.Helper()
	nr, ok := rep[node]
	if !ok {
		t.Fatalf("report has no node %s: %v", node, rep)
	}
	var ids []string
	for id, in := range nr.Instances {
		ids = append(ids, id)
		if in.State != "ready" || in.ResourceAddress == "" {
			t.Errorf("node %s instance %s: %+v, want ready with an address", node, id, in)
		}
	}
	sort.Strings(ids)
	if len(ids) != n || nr.Scaling.Actual != n || nr.Scaling.Target != n || nr.Scaling.Min != min || nr.Scaling.Max != max {
		t.Errorf("node %s: %d instance(s), scaling %+v; want %d, actual=target=%d, min %d, max %d", node, len(ids), nr.Scaling, n, n, min, max)
	}
	return ids
}

func eventually(t *testing.T, d time.Duration, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func wantAlive(t *testing.T, b itBackend, id string, n int) {
	t.Helper()
	if got := b.alive(t, id); got != n {
		t.Errorf("%s holds %d instance(s) of infrastructure %s, want %d", b.name, got, id, n)
	}
}

// ----------------------------------------------------------------- tests

// TestIntegrationLifecycle follows one infrastructure through its life on
// each backend: a two-level build wired with getip(), health checks that
// pass, healing of an instance removed behind the orchestrator's back,
// scaling within min/max and by victim, reconfiguration with build -i, and
// destroy.
func TestIntegrationLifecycle(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			b.require(t)
			itHome(t)
			// Built here: subtests' cleanups would destroy it too early.
			id := build(t, b, "ping.yaml")
			var receiver, sender string
			ok := t.Run("build-getip", func(t *testing.T) {
				wantAlive(t, b, id, 2)
				rep := maintain(t, id)
				if len(rep) != 2 {
					t.Errorf("report nodes %v, want receiver and sender", rep)
				}
				receiver = checkNode(t, rep, "receiver", 1, 1, 1)[0]
				sender = checkNode(t, rep, "sender", 1, 1, 3)[0]
				addr := rep["receiver"].Instances[receiver].ResourceAddress
				// The sender was told the receiver's address and got
				// answers from it.
				eventually(t, 20*time.Second, func() (bool, string) {
					out := b.output(t, id, sender)
					return strings.Contains(out, b.reply(addr)), fmt.Sprintf("sender output %q does not show %q", out, b.reply(addr))
				})
			})
			if !ok {
				return
			}
			ok = t.Run("heal", func(t *testing.T) {
				b.kill(t, id, receiver)
				wantAlive(t, b, id, 1)
				rep := maintain(t, id)
				ids := checkNode(t, rep, "receiver", 1, 1, 1)
				if len(ids) == 1 && ids[0] == receiver {
					t.Errorf("receiver %s was not replaced", receiver)
				}
				if len(ids) == 1 {
					receiver = ids[0]
				}
				checkNode(t, rep, "sender", 1, 1, 3)
				wantAlive(t, b, id, 2)
			})
			if !ok {
				return
			}
			ok = t.Run("scale", func(t *testing.T) {
				for _, step := range []struct {
					args    []string
					warning string // "" when none is expected
					target  int
				}{
					{[]string{"-c", "5"}, "target 6 of node sender lowered to its maximum 3", 3},
					{[]string{"-c", "-5"}, "target -2 of node sender raised to its minimum 1", 1},
					{[]string{"-s", "2"}, "", 2},
				} {
					stdout, stderr := occOK(t, append([]string{"scale", "-i", id, "-n", "sender"}, step.args...)...)
					if step.warning != "" && !strings.Contains(stderr, "warning: "+step.warning) {
						t.Errorf("scale %v: stderr %q, want the warning %q", step.args, stderr, step.warning)
					}
					if step.warning == "" && strings.Contains(stderr, "warning") {
						t.Errorf("scale %v: unexpected warning %q", step.args, stderr)
					}
					if want := fmt.Sprintf("target %d (min 1, max 3)", step.target); !strings.Contains(stdout, want) {
						t.Errorf("scale %v: stdout %q, want %q", step.args, stdout, want)
					}
					rep := maintain(t, id, "--parallelize")
					checkNode(t, rep, "sender", step.target, 1, 3)
					wantAlive(t, b, id, 1+step.target)
				}
				// -f removes the named instance: the original sender, the
				// oldest, which a plain scale-down (newest first) keeps.
				stdout, _ := occOK(t, "maintain", "-i", id, "-r", "--format", "json", "-f", "sender")
				var rep map[string]itNode
				if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep) != 1 {
					t.Errorf("maintain -f sender: report nodes %v, want only sender", rep)
				}
				if before := checkNode(t, rep, "sender", 2, 1, 3); !slices.Contains(before, sender) {
					t.Fatalf("the first sender %s is gone after scaling down and up (%v): scale-down must drop the newest", sender, before)
				}
				stdout, stderr := occOK(t, "scale", "-i", id, "-n", "sender", "-f", sender)
				if !strings.Contains(stdout, "target 1 (min 1, max 3)") || strings.Contains(stderr, "warning") {
					t.Errorf("scale -f: stdout %q stderr %q", stdout, stderr)
				}
				after := checkNode(t, maintain(t, id), "sender", 1, 1, 3)
				if slices.Contains(after, sender) {
					t.Errorf("scale -f %s: the victim is still there (%v)", sender, after)
				}
				wantAlive(t, b, id, 2)
				// Below min and above max are clamped, with a warning, when
				// asked for absolutely too.
				_, stderr = occOK(t, "scale", "-i", id, "-n", "sender", "-s", "9")
				if !strings.Contains(stderr, "warning: target 9 of node sender lowered to its maximum 3") {
					t.Errorf("scale -s 9: stderr %q", stderr)
				}
				_, stderr = occOK(t, "scale", "-i", id, "-n", "sender", "-s", "1")
				if strings.Contains(stderr, "warning") {
					t.Errorf("scale -s 1: stderr %q", stderr)
				}
				checkNode(t, maintain(t, id), "sender", 1, 1, 3)
				wantAlive(t, b, id, 2)
			})
			if !ok {
				return
			}
			ok = t.Run("reconfigure", func(t *testing.T) {
				stdout, stderr, code := occ(t, "build", "-i", id, filepath.Join(itestData, "ping-changed.yaml"))
				if code != 0 {
					t.Fatalf("build -i: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
				}
				if got := lastLine(stdout); got != id {
					t.Errorf("build -i: last line %q, want %s", got, id)
				}
				rep := maintain(t, id)
				if _, ok := rep["sender"]; ok || len(rep) != 2 {
					t.Errorf("report nodes %v, want receiver and extra", rep)
				}
				if ids := checkNode(t, rep, "receiver", 1, 1, 1); len(ids) == 1 && ids[0] != receiver {
					t.Errorf("receiver %s replaced by %s: a kept node must keep its instance", receiver, ids[0])
				}
				checkNode(t, rep, "extra", 1, 1, 1)
				wantAlive(t, b, id, 2)
			})
			if !ok {
				return
			}
			t.Run("destroy", func(t *testing.T) {
				stdout, _ := occOK(t, "destroy", "-i", id)
				if !strings.Contains(stdout, "removed 2 instance(s)") {
					t.Errorf("destroy: stdout %q", stdout)
				}
				wantAlive(t, b, id, 0)
				if stdout, _ := occOK(t, "maintain", "-l"); strings.Contains(stdout, id) {
					t.Errorf("maintain -l still lists %s:\n%s", id, stdout)
				}
				if _, stderr, code := occ(t, "maintain", "-i", id); code == 0 || !strings.Contains(stderr, "unknown infrastructure") {
					t.Errorf("maintain of a destroyed infrastructure: exit %d, stderr %q", code, stderr)
				}
			})
		})
	}
}

// TestIntegrationBuildFailures: builds that cannot succeed exit non-zero,
// say why, and leave nothing behind — no instance at the backend, no
// infrastructure in the store.
func TestIntegrationBuildFailures(t *testing.T) {
	cases := []struct {
		name, infra string
		// want is in stderr, per backend ("" key: any backend).
		want map[string]string
		// removed is how many instances the rollback names.
		removed int
	}{
		{"health-check-fails", "unhealthy.yaml", map[string]string{"": "not ready within 3s: health checks failing: ports: "}, 1},
		{"cannot-create", "broken.yaml", map[string]string{
			"docker": "origin is local but image occopus/no-such-image-itest:latest does not exist",
			"local":  "/nonexistent/occopus-itest-program",
		}, 1},
		{"exits-at-once", "quitter.yaml", map[string]string{"": "stopped at the backend"}, 2},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			b.require(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					itHome(t)
					occOK(t, "import", b.nodes())
					stdout, stderr, code := occ(t, "build", filepath.Join(itestData, tc.infra))
					id := uuidRE.FindString(stderr)
					if id == "" {
						t.Fatalf("build: stderr does not name the infrastructure id:\n%s", stderr)
					}
					cleanupInfra(t, b, id)
					if code == 0 {
						t.Fatalf("build of %s succeeded:\n%s", tc.infra, stdout)
					}
					want := tc.want[""] + tc.want[b.name]
					if !strings.Contains(stderr, want) {
						t.Errorf("stderr does not say %q:\n%s", want, stderr)
					}
					if re := regexp.MustCompile(`removed (\d+) instance`); re.FindStringSubmatch(stderr) == nil ||
						re.FindStringSubmatch(stderr)[1] != strconv.Itoa(tc.removed) {
						t.Errorf("stderr does not say it removed %d instance(s):\n%s", tc.removed, stderr)
					}
					if uuidRE.MatchString(lastLine(stdout)) {
						t.Errorf("failed build printed an id as the last line of stdout: %q", stdout)
					}
					wantAlive(t, b, id, 0)
					if n := len(infraProcs(id)); n != 0 {
						t.Errorf("%d process(es) carry OCCOPUS_INFRA_ID=%s", n, id)
					}
					if stdout, _ := occOK(t, "maintain", "-l"); strings.Contains(stdout, id) {
						t.Errorf("maintain -l lists the rolled back %s:\n%s", id, stdout)
					}
				})
			}
		})
	}
}

// ------------------------------------------------------------ subprocess

// occBinary builds cmd/occopus into dir.
func occBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "occopus")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/occopus-go/occopus/cmd/occopus")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/occopus: %v\n%s", err, out)
	}
	return bin
}

// proc is a running `occopus` whose stderr is watched line by line.
type occProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{}
}

func startOcc(t *testing.T, bin, home string, args ...string) *occProc {
	t.Helper()
	p := &occProc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = homeEnv(home)
	p.cmd.Stdout = &p.stdout
	pr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		r := bufio.NewReader(pr)
		for {
			line, err := r.ReadString('\n')
			p.mu.Lock()
			p.stderr.WriteString(line)
			p.mu.Unlock()
			if err != nil {
				_, _ = io.Copy(io.Discard, pr)
				return
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.wait()
		}
	})
	return p
}

func (p *occProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitFor waits until stderr matches re.
func (p *occProc) waitFor(t *testing.T, re *regexp.Regexp, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for !re.MatchString(p.errText()) {
		select {
		case <-deadline:
			t.Fatalf("no %q on stderr after %s:\n%s", re, d, p.errText())
		case <-p.done:
			if !re.MatchString(p.errText()) {
				t.Fatalf("occopus ended before %q:\n%s", re, p.errText())
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *occProc) wait() error {
	<-p.done
	return p.cmd.Wait()
}

// homeEnv is this process's environment with OCCOPUS_HOME=home.
func homeEnv(home string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OCCOPUS_HOME=") })
	return append(env, "OCCOPUS_HOME="+home)
}

// occSub runs the binary with OCCOPUS_HOME=home and fails the test unless
// it exits 0.
func occSub(t *testing.T, bin, home string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = homeEnv(home)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("occopus %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// TestIntegrationInterrupted runs the real binary and stops it mid-build:
// with Ctrl-C it rolls back; after kill -9, `maintain -l` still lists the
// infrastructure and `destroy` removes what the build left, also a
// resource the store never heard of (found by label / in /proc).
func TestIntegrationInterrupted(t *testing.T) {
	binDir := t.TempDir()
	var bin string
	for _, b := range backends() {
		t.Run("SIGINT/"+b.name, func(t *testing.T) {
			b.require(t)
			if bin == "" {
				bin = occBinary(t, binDir)
			}
			home := itHome(t)
			occOK(t, "import", b.nodes())
			p := startOcc(t, bin, home, "build", filepath.Join(itestData, "slow.yaml"))
			p.waitFor(t, uuidRE, time.Minute)
			id := uuidRE.FindString(p.errText())
			cleanupInfra(t, b, id)
			// The slow node exists and waits for its health check.
			p.waitFor(t, regexp.MustCompile(`slow +\S+ +creating -> pending`), 2*time.Minute)
			wantAlive(t, b, id, 2)
			if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			err := p.wait()
			stderr := p.errText()
			if p.cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("interrupted build exited 0 (%v)\nstderr:\n%s", err, stderr)
			}
			if !strings.Contains(stderr, "removed 2 instance(s)") {
				t.Errorf("interrupted build does not say what it removed:\n%s", stderr)
			}
			if uuidRE.MatchString(lastLine(p.stdout.String())) {
				t.Errorf("interrupted build printed an id as the last line of stdout: %q", p.stdout.String())
			}
			wantAlive(t, b, id, 0)
			if n := len(infraProcs(id)); n != 0 {
				t.Errorf("%d process(es) carry OCCOPUS_INFRA_ID=%s", n, id)
			}
			if stdout, _ := occOK(t, "maintain", "-l"); strings.Contains(stdout, id) {
				t.Errorf("maintain -l lists the rolled back %s:\n%s", id, stdout)
			}
		})
	}
	// The backends in parallel: destroy after a kill waits for the dead
	// build's lease to lapse. Only the binary runs here (no t.Setenv).
	t.Run("kill-9", func(t *testing.T) {
		for _, b := range backends() {
			t.Run(b.name, func(t *testing.T) {
				t.Parallel()
				b.require(t)
				if bin == "" {
					t.Fatal("no binary: the SIGINT tests did not build it")
				}
				home := t.TempDir()
				occSub(t, bin, home, "import", b.nodes())
				p := startOcc(t, bin, home, "build", filepath.Join(itestData, "slow.yaml"))
				p.waitFor(t, uuidRE, time.Minute)
				id := uuidRE.FindString(p.errText())
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
					defer cancel()
					cmd := exec.CommandContext(ctx, bin, "destroy", "-i", id)
					cmd.Env = homeEnv(home)
					_ = cmd.Run() // may already be gone
					if left := b.sweep(id); len(left) > 0 {
						t.Errorf("cleanup: %d %s resource(s) of infrastructure %s survived `occopus destroy`: %v", len(left), b.name, id, left)
					}
				})
				// Killed as soon as the slow node's creation has begun.
				p.waitFor(t, regexp.MustCompile(`slow +\S+ +- -> creating`), 2*time.Minute)
				if err := p.cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				_ = p.wait()
				if got := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !got.Signaled() || got.Signal() != syscall.SIGKILL {
					t.Fatalf("occopus build was not killed: %v\n%s", p.cmd.ProcessState, p.errText())
				}
				// What it made outlives it; the receiver at least.
				if n := b.alive(t, id); n < 1 {
					t.Errorf("%d instance(s) alive after kill -9 of the build, want the receiver at least", n)
				}
				stdout, _ := occSub(t, bin, home, "maintain", "-l")
				if !strings.Contains(stdout, id) {
					t.Errorf("maintain -l does not list %s:\n%s", id, stdout)
				}
				// And a resource the store never heard of (a crash between
				// the backend's create and the record, in effect).
				b.plant(t, id)
				stdout, _ = occSub(t, bin, home, "destroy", "-i", id)
				if !regexp.MustCompile(`removed \d+ instance\(s\) and 1 unrecorded resource\(s\)\n`).MatchString(stdout) ||
					!strings.Contains(stdout, "infrastructure "+id+" destroyed") {
					t.Errorf("destroy does not say it removed the instances and the unrecorded resource: stdout %q", stdout)
				}
				wantAlive(t, b, id, 0)
				if n := len(infraProcs(id)); n != 0 {
					t.Errorf("%d process(es) carry OCCOPUS_INFRA_ID=%s", n, id)
				}
			})
		}
	})
}
