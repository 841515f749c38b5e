package rest_test

// kill -9 of the real `occopus rest-service` while it builds, then a
// restart on the same $OCCOPUS_HOME: the infrastructure is finished, and
// nothing is duplicated. The binary is built from ./cmd/occopus; the node
// definitions are imported with `occopus import`.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/store/sqlite"
)

// slowNodeDefs: instances that become ready only after a while (their
// port opens 2 s after the start), so a kill lands while the creations
// are in flight.
const slowNodeDefs = `
'node_def:rest_slow':
  - resource:
      type: local
      stop_timeout: 1
    contextualisation:
      type: docker
      command: ["sh", "-c", "sleep 2; exec busybox httpd -f -p $OCCOPUS_IP:8080"]
    health_check:
      ports: [8080]
`

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// occopusBinary builds ./cmd/occopus once per test binary.
func occopusBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		if binDir, binErr = os.MkdirTemp("", "occopus-rest-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "occopus")
		cmd := exec.Command(goBin, "build", "-o", binPath, "./cmd/occopus")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/occopus: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	busyboxOnce sync.Once
	busyboxErr  error
)

// requireBusybox: the slow local nodes serve their port with busybox httpd.
func requireBusybox(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		needOrSkip(t, "the local backend needs /proc (linux)")
	}
	busyboxOnce.Do(func() {
		if _, err := exec.LookPath("busybox"); err == nil {
			return
		}
		// build.sh installs busybox-static; NO_DOCKER: tarballs only.
		cmd := exec.Command("sh", filepath.Join(repoRoot(t), "images", "build.sh"))
		cmd.Env = append(os.Environ(), "NO_DOCKER=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			busyboxErr = fmt.Errorf("no busybox, and images/build.sh could not install it: %v\n%s", err, out)
		}
	})
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
}

// service is one run of `occopus rest-service`.
type service struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	done   chan struct{}
}

// startService runs the binary on home and port and waits for /healthz.
func startService(t *testing.T, bin, home string, port int) *service {
	t.Helper()
	s := &service{stderr: &syncBuffer{}, done: make(chan struct{}), base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.cmd = exec.Command(bin, "rest-service", "--port", strconv.Itoa(port), "--interval", "0.2", "--parallelize")
	s.cmd.Env = append(os.Environ(), "OCCOPUS_HOME="+home)
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		// Only this process of ours, by its pid.
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("the service exited: %s", s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service does not answer: %s", s.stderr)
		}
	}
}

// kill9 kills the service with SIGKILL and waits until it is gone.
func (s *service) kill9(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if st, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || st.Signal() != syscall.SIGKILL {
		t.Fatalf("the service ended with %v, not by SIGKILL", s.cmd.ProcessState)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// localNodeIDs maps the node id of every live instance process (the
// session leaders the local backend starts) carrying the infra id to how
// many processes lead it.
func localNodeIDs(infraID string) map[string]int {
	want := []byte("OCCOPUS_INFRA_ID=" + infraID)
	ids := map[string]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		kvs := bytes.Split(env, []byte{0})
		if !slices.ContainsFunc(kvs, func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" || f[3] != filepath.Base(d) { // field 6: session id
			continue
		}
		for _, kv := range kvs {
			if v, ok := bytes.CutPrefix(kv, []byte("OCCOPUS_NODE_ID=")); ok {
				ids[string(v)]++
			}
		}
	}
	return ids
}

// sweepLocal kills every process group left of an infrastructure.
func sweepLocal(t testing.TB, infraID string) {
	for range 3 {
		ids := localNodeIDs(infraID)
		if len(ids) == 0 {
			return
		}
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			env, err := os.ReadFile(filepath.Join(d, "environ"))
			if err == nil && bytes.Contains(env, []byte("OCCOPUS_INFRA_ID="+infraID+"\x00")) {
				pid, _ := strconv.Atoi(filepath.Base(d))
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Logf("sweep: killed the processes of %d instances of %s", len(ids), infraID)
		time.Sleep(100 * time.Millisecond)
	}
}

// states counts the instances of a node by state.
func (rep report) states(node string) map[string]int {
	out := map[string]int{}
	for _, in := range rep[node].Instances {
		out[in.State]++
	}
	return out
}

// getReportFromStore reads the report from the store of a home no
// service runs on (what the killed service left).
func getReportFromStore(t *testing.T, home, id string) report {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(home, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := occopus.New(occopus.Options{Store: st, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := m.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestKill9DuringBuild: SIGKILL `occopus rest-service` while the
// instances of a new infrastructure are being created, restart it on the
// same home and port: the infrastructure is finished with exactly its
// target of instances, on the local backend and on Docker.
func TestKill9DuringBuild(t *testing.T) {
	backends := []struct {
		name    string
		require func(testing.TB)
		defs    string
		typ     string
		// running maps node id -> instances at the backend.
		running func(t testing.TB, infraID string) map[string]int
		sweep   func(t testing.TB, infraID string)
	}{
		{"local", requireBusybox, slowNodeDefs, "rest_slow",
			func(_ testing.TB, id string) map[string]int { return localNodeIDs(id) }, sweepLocal},
		{"docker", requireDocker, dockerNodeDefs, "rest_docker", containerNodeIDs, sweepContainers},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.require(t)
			t.Parallel()
			bin := occopusBinary(t)
			home := t.TempDir()
			defsFile := filepath.Join(home, "nodes.yaml")
			if err := os.WriteFile(defsFile, []byte(b.defs), 0o644); err != nil {
				t.Fatal(err)
			}
			imp := exec.Command(bin, "import", defsFile)
			imp.Env = append(os.Environ(), "OCCOPUS_HOME="+home)
			if out, err := imp.CombinedOutput(); err != nil {
				t.Fatalf("occopus import: %v\n%s", err, out)
			}
			const target = 3
			infra := fmt.Sprintf("infra_name: kill9-%s\nnodes:\n  - name: n\n    type: %s\n    scaling: {min: %d, max: %d}\n", b.name, b.typ, target, target+2)

			port := freePort(t)
			svc := startService(t, bin, home, port)
			id := create(t, svc.base, infra)
			t.Cleanup(func() { b.sweep(t, id) })

			// Kill as soon as the first instance exists at the backend:
			// the creations are in flight.
			var at report
			var made int
			for deadline := time.Now().Add(30 * time.Second); ; {
				if made = len(b.running(t, id)); made > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no instance at the backend: %s", svc.stderr)
				}
				time.Sleep(2 * time.Millisecond)
			}
			svc.kill9(t)
			if b.name == "docker" {
				o, _ := dockerCmd("ps", "-a", "--filter", "label=occopus.infra_id="+id, "--format", "{{.State}}")
				t.Logf("container states at the kill: %q", strings.Fields(o))
			}
			at = getReportFromStore(t, home, id)
			if at.ready("n") >= target {
				t.Fatalf("killed too late, nothing was in flight: %+v", at)
			}
			t.Logf("killed with instance records %v (target %d) and %d at the backend", at.states("n"), target, made)
			if _, err := http.Get(svc.base + "/healthz"); err == nil {
				t.Fatal("the killed service still answers")
			}

			svc = startService(t, bin, home, port)
			var done report
			for deadline := time.Now().Add(75 * time.Second); ; {
				rep := getReport(t, svc.base, id)
				if rep.ready("n") == target && len(rep["n"].Instances) == target && rep["n"].Scaling.Target == target {
					done = rep
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not finished after the restart: %+v\n%s", rep, svc.stderr)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// Not duplicated: exactly the report's instances at the backend,
			// one each, and still so a few passes later.
			check := func(when string) {
				t.Helper()
				running := b.running(t, id)
				n := 0
				for _, c := range running {
					n += c
				}
				if n != target || len(running) != target {
					t.Fatalf("%s: %d instances at the backend for %d node ids, want %d: %v", when, n, len(running), target, running)
				}
				for nid := range done["n"].Instances {
					if running[nid] != 1 {
						t.Fatalf("%s: instance %s of the report has %d at the backend: %v", when, nid, running[nid], running)
					}
				}
			}
			check("after the restart")
			time.Sleep(time.Second) // 5 passes
			check("a second later")
			if rep := getReport(t, svc.base, id); len(rep["n"].Instances) != target || rep.ready("n") != target {
				t.Fatalf("a second later: %+v", rep)
			}
			t.Logf("finished after the restart: %v", done.states("n"))

			expect(t, call(t, "DELETE", svc.base+"/infrastructures/"+id, ""), 200)
			if left := b.running(t, id); len(left) != 0 {
				t.Fatalf("left after DELETE: %v", left)
			}
		})
	}
}
