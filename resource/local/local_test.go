package local

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

// The test binary doubles as an instance program and as a short-lived
// orchestrator, chosen by LOCALTEST_HELPER.
func TestMain(m *testing.M) {
	switch os.Getenv("LOCALTEST_HELPER") {
	case "listen":
		helperListen()
	case "create":
		helperCreate()
	default:
		os.Exit(m.Run())
	}
}

// helperListen serves a greeting on $OCCOPUS_IP, to show an instance can
// bind its own loopback address.
func helperListen() {
	l, err := net.Listen("tcp", net.JoinHostPort(os.Getenv(EnvIP), "0"))
	if err != nil {
		fmt.Println("listen error:", err)
		os.Exit(1)
	}
	fmt.Println("listening", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		fmt.Fprintf(c, "hello from %s\n", os.Getenv(EnvNodeID))
		c.Close()
	}
}

// helperCreate creates one instance and exits, as an orchestrator that
// stops (or crashes) after Create would.
func helperCreate() {
	var spec resource.Spec
	if err := json.Unmarshal([]byte(os.Getenv("LOCALTEST_SPEC")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	h, err := New(resource.Config{Home: os.Getenv("LOCALTEST_HOME")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hd, err := h.Create(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = json.NewEncoder(os.Stdout).Encode(hd)
	os.Exit(0)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newHandler(t *testing.T, home string, res map[string]any) *Handler {
	t.Helper()
	if res == nil {
		res = map[string]any{}
	}
	res["type"] = "local"
	h, err := New(resource.Config{Resource: res, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

func spec(command ...string) resource.Spec {
	return resource.Spec{
		InfraID:  "test" + randHex(6),
		NodeID:   randHex(8),
		NodeName: "node",
		Resource: map[string]any{"type": "local"},
		Context:  resource.Context{Command: command},
	}
}

// create creates and registers the instance's destruction.
func create(t *testing.T, h *Handler, s resource.Spec) resource.Handle {
	t.Helper()
	hd, err := h.Create(context.Background(), s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Destroy(context.Background(), hd); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return hd
}

func pidOf(t *testing.T, hd resource.Handle) int {
	t.Helper()
	pid, err := strconv.Atoi(hd.ID)
	if err != nil || pid <= 0 {
		t.Fatalf("handle id %q is no pid", hd.ID)
	}
	return pid
}

// waitFor polls cond for up to 20 s (generous: CI machines can be busy).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	h := newHandler(t, t.TempDir(), nil)
	resourcetest.Run(t, h, func(t *testing.T) resource.Spec { return spec("sleep 3600") },
		resourcetest.WithKill(func(t *testing.T, hd resource.Handle) {
			if err := syscall.Kill(-pidOf(t, hd), syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
		}))
}

func TestRegistered(t *testing.T) {
	h, err := resource.New(resource.Config{Resource: map[string]any{"type": "local"}, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*Handler); !ok {
		t.Fatalf("resource.New(type local) = %T", h)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("OCCOPUS_HOME", "")
	if _, err := New(resource.Config{}); err == nil {
		t.Error("New without a home accepted")
	}
	if _, err := New(resource.Config{Home: t.TempDir(), Resource: map[string]any{"stop_timeout": "soon"}}); err == nil {
		t.Error("bad stop_timeout accepted")
	}
	h := newHandler(t, t.TempDir(), map[string]any{"stop_timeout": 2})
	if h.stopTimeout != 2*time.Second {
		t.Errorf("stop_timeout 2 = %v", h.stopTimeout)
	}
	for _, s := range []resource.Spec{
		{InfraID: "../x", NodeID: "n", Context: resource.Context{Command: []string{"true"}}},
		{InfraID: "i", NodeID: "a/b", Context: resource.Context{Command: []string{"true"}}},
		{InfraID: "i", NodeID: "n"},
	} {
		if _, err := h.Create(context.Background(), s); err == nil {
			t.Errorf("Create(%+v) accepted", s)
		}
	}
}

func TestLogEnvWorkdir(t *testing.T) {
	home := t.TempDir()
	wd := t.TempDir()
	h := newHandler(t, home, map[string]any{"workdir": wd})
	s := spec(`echo "out:$OCCOPUS_NODE_NAME:$FOO:$OCCOPUS_IP:$OCCOPUS_INFRA_ID"; echo "err:$(pwd)" >&2; exec sleep 3600`)
	s.NodeName = "web"
	s.Context.Env = []string{"FOO=bar baz"}
	hd := create(t, h, s)
	addr, err := h.Addresses(context.Background(), hd)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(home, "local", s.InfraID, s.NodeID+".log")
	want := []string{"out:web:bar baz:" + addr.Private + ":" + s.InfraID, "err:" + wd}
	waitFor(t, "log lines", func() bool {
		b, _ := os.ReadFile(logPath)
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				return false
			}
		}
		return true
	})
	var r record
	b, err := os.ReadFile(filepath.Join(home, "local", s.InfraID, s.NodeID+".json"))
	if err != nil || json.Unmarshal(b, &r) != nil {
		t.Fatalf("record: %v %s", err, b)
	}
	st, _ := readStat(r.PID)
	if strconv.Itoa(r.PID) != hd.ID || r.StartTime == 0 || r.StartTime != st.startTime || r.Address != addr.Private || r.NodeName != "web" {
		t.Errorf("record = %+v, handle %s, addr %s", r, hd.ID, addr.Private)
	}
}

// TestEnvironmentAllowList: an instance gets PATH, HOME and the like, and
// its own env, never the orchestrator's secrets.
func TestEnvironmentAllowList(t *testing.T) {
	t.Setenv("OCCOPUS_TOKEN", "tok-should-not-leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-should-not-leak")
	t.Setenv("LC_TIME", "C")
	home := t.TempDir()
	h := newHandler(t, home, nil)
	s := spec(`env; echo done; exec sleep 3600`)
	s.Context.Env = []string{"MINE=yes"}
	hd := create(t, h, s)
	t.Cleanup(func() { h.Destroy(context.Background(), hd) })
	logPath := filepath.Join(home, "local", s.InfraID, s.NodeID+".log")
	var env string
	waitFor(t, "the env dump", func() bool {
		b, _ := os.ReadFile(logPath)
		env = string(b)
		return strings.Contains(env, "done")
	})
	for _, want := range []string{"PATH=", "HOME=", "LC_TIME=C", "MINE=yes", "OCCOPUS_NODE_ID=" + s.NodeID} {
		if !strings.Contains(env, want) {
			t.Errorf("instance env lacks %s:\n%s", want, env)
		}
	}
	for _, leak := range []string{"tok-should-not-leak", "aws-should-not-leak", "OCCOPUS_TOKEN", "AWS_SECRET_ACCESS_KEY"} {
		if strings.Contains(env, leak) {
			t.Errorf("instance env has %s:\n%s", leak, env)
		}
	}
}

func TestAddresses(t *testing.T) {
	h := newHandler(t, t.TempDir(), nil)
	seen := map[string]bool{}
	for range 5 {
		hd := create(t, h, spec("sleep 3600"))
		a, err := h.Addresses(context.Background(), hd)
		if err != nil {
			t.Fatal(err)
		}
		ip := net.ParseIP(a.Private).To4()
		if ip == nil || ip[0] != 127 || a.Private == "127.0.0.1" || a.Public != a.Private {
			t.Errorf("address %+v: want 127.x.y.z other than 127.0.0.1, public = private", a)
		}
		if seen[a.Private] {
			t.Errorf("address %s given twice", a.Private)
		}
		seen[a.Private] = true
	}

	// A live instance holding the address a node would hash to pushes that
	// node to another one.
	nodeID := randHex(8)
	first, err := h.allocate(nodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	squatter := &record{PID: os.Getpid(), StartTime: self.startTime, Address: first, InfraID: "squat" + randHex(4), NodeID: "other"}
	if err := os.MkdirAll(h.infraDir(squatter.InfraID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.writeRecord(squatter); err != nil {
		t.Fatal(err)
	}
	second, err := h.allocate(nodeID, nil)
	if err != nil || second == first {
		t.Errorf("allocate with %s taken = %s, %v", first, second, err)
	}
	// Found in /proc only (no record), it still counts.
	if third, _ := h.allocate(nodeID, []proc{{pid: 1, env: map[string]string{EnvIP: first, EnvNodeID: "x"}}}); third == first {
		t.Errorf("allocate ignored an address in use per /proc")
	}
	_ = os.RemoveAll(h.infraDir(squatter.InfraID))
	if again, _ := h.allocate(nodeID, nil); again != first {
		t.Errorf("allocate is not deterministic: %s then %s", first, again)
	}
}

// TestBindOwnAddress: an instance can listen on its 127.x.y.z without any
// configuration (Linux routes all of 127/8 to lo) and be reached there.
func TestBindOwnAddress(t *testing.T) {
	home := t.TempDir()
	h := newHandler(t, home, nil)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := spec(exe, "-test.run=^$")
	s.Context.Env = []string{"LOCALTEST_HELPER=listen"}
	hd := create(t, h, s)
	a, err := h.Addresses(context.Background(), hd)
	if err != nil {
		t.Fatal(err)
	}
	var listenAddr string
	waitFor(t, "the instance to listen", func() bool {
		b, _ := os.ReadFile(h.LogPath(s.InfraID, s.NodeID))
		for _, line := range strings.Split(string(b), "\n") {
			if after, ok := strings.CutPrefix(line, "listening "); ok {
				listenAddr = after
			}
		}
		return listenAddr != "" || strings.Contains(string(b), "error")
	})
	host, _, _ := net.SplitHostPort(listenAddr)
	if host != a.Private {
		t.Fatalf("instance listens on %q, want its address %s", listenAddr, a.Private)
	}
	c, err := net.DialTimeout("tcp", listenAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello from "+s.NodeID+"\n" {
		t.Errorf("greeting = %q, %v", line, err)
	}
}

// TestSurvivesOrchestrator: an instance made by a process that then exits
// lives on, is found by a new handler, and after its record is lost, by
// the /proc scan; Create adopts it rather than starting a second one.
func TestSurvivesOrchestrator(t *testing.T) {
	home := t.TempDir()
	s := spec("sleep 3600")
	s.NodeName = "survivor"
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sj, _ := json.Marshal(s)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCALTEST_HELPER=create", "LOCALTEST_HOME="+home, "LOCALTEST_SPEC="+string(sj))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orchestrator helper: %v %s", err, out)
	}
	var hd resource.Handle
	if err := json.Unmarshal(out, &hd); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	h := newHandler(t, home, map[string]any{"stop_timeout": "1s"})
	t.Cleanup(func() {
		if err := h.Destroy(context.Background(), hd); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	pid := pidOf(t, hd)
	if st, err := h.State(context.Background(), hd); err != nil || st != resource.StateRunning {
		t.Fatalf("after the orchestrator exited: State = %s, %v", st, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !alive(pid, 0) {
		t.Fatal("instance died with the handler")
	}

	// Lose the record, as a crash between start and write might.
	if err := os.Remove(filepath.Join(home, "local", s.InfraID, s.NodeID+".json")); err != nil {
		t.Fatal(err)
	}
	h2 := newHandler(t, home, map[string]any{"stop_timeout": "1s"})
	got, err := h2.List(context.Background(), s.InfraID)
	if err != nil || len(got) != 1 {
		t.Fatalf("List without record = %+v, %v; want the live process", got, err)
	}
	o := got[0]
	if o.Handle.ID != hd.ID || o.NodeID != s.NodeID || o.NodeName != "survivor" || o.InfraID != s.InfraID {
		t.Errorf("List = %+v, want pid %s node %s", o, hd.ID, s.NodeID)
	}
	if st, err := h2.State(context.Background(), o.Handle); err != nil || st != resource.StateRunning {
		t.Errorf("State of the listed handle = %s, %v", st, err)
	}
	fh, found, err := h2.Find(context.Background(), s.InfraID, s.NodeID)
	if err != nil || !found || fh.ID != hd.ID {
		t.Errorf("Find = %s, %v, %v", fh.ID, found, err)
	}
	a1, _ := h2.Addresses(context.Background(), hd)
	again, err := h2.Create(context.Background(), s)
	if err != nil || again.ID != hd.ID {
		t.Fatalf("Create after lost record = %s, %v; want adoption of %s", again.ID, err, hd.ID)
	}
	if a2, _ := h2.Addresses(context.Background(), again); a2 != a1 || a1.Private == "" {
		t.Errorf("adopted address %+v, was %+v", a2, a1)
	}
	if err := h2.Destroy(context.Background(), hd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance to end", func() bool { return !alive(pid, 0) })
	if got, _ := h2.List(context.Background(), s.InfraID); len(got) != 0 {
		t.Errorf("List after Destroy = %+v", got)
	}
}

func TestSIGTERMIgnoredIsKilled(t *testing.T) {
	h := newHandler(t, t.TempDir(), map[string]any{"stop_timeout": "300ms"})
	// The ignored TERM is inherited by the sleeps too.
	hd := create(t, h, spec("trap '' TERM; echo ready; while :; do sleep 0.1; done"))
	pid := pidOf(t, hd)
	waitFor(t, "the trap to be set", func() bool {
		b, _ := os.ReadFile(h.LogPath(hd2spec(hd)))
		return strings.Contains(string(b), "ready")
	})
	start := time.Now()
	if err := h.Destroy(context.Background(), hd); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 4*time.Second {
		t.Errorf("Destroy took %v; want the 300ms grace, then SIGKILL", el)
	}
	if alive(pid, 0) {
		t.Error("process survived Destroy")
	}
	if _, err := h.State(context.Background(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State after Destroy: %v", err)
	}
}

func hd2spec(hd resource.Handle) (string, string) {
	var d handleData
	_ = json.Unmarshal(hd.Data, &d)
	return d.InfraID, d.NodeID
}

// TestExitedThenRecreated: an instance that ended is shutdown; Create for
// its node id starts a new process at the same address.
func TestExitedThenRecreated(t *testing.T) {
	h := newHandler(t, t.TempDir(), nil)
	s := spec("exit 0")
	hd := create(t, h, s)
	waitFor(t, "exit", func() bool {
		st, err := h.State(context.Background(), hd)
		return err == nil && st == resource.StateShutdown
	})
	a1, _ := h.Addresses(context.Background(), hd)
	s.Context.Command = []string{"sleep", "3600"} // list form: no shell
	hd2 := create(t, h, s)
	if hd2.ID == hd.ID {
		t.Fatalf("Create returned the ended instance %s", hd.ID)
	}
	if st, err := h.State(context.Background(), hd2); err != nil || st != resource.StateRunning {
		t.Errorf("State = %s, %v", st, err)
	}
	a2, _ := h.Addresses(context.Background(), hd2)
	if a1 != a2 {
		t.Errorf("address changed on re-creation: %+v → %+v", a1, a2)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%s/cmdline", hd2.ID))
	if string(b) != "sleep\x003600\x00" {
		t.Errorf("cmdline = %q", b)
	}

	// The first handle is stale now: it must not reach the new instance.
	if _, err := h.State(context.Background(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State(stale handle): %v, want ErrNotFound", err)
	}
	if err := h.Destroy(context.Background(), hd); err != nil {
		t.Errorf("Destroy(stale handle): %v", err)
	}
	if st, err := h.State(context.Background(), hd2); err != nil || st != resource.StateRunning {
		t.Errorf("new instance after Destroy(stale handle): %s, %v", st, err)
	}
}

// TestRecycledPID: a record whose pid now belongs to another process (start
// time differs) is not taken for alive.
func TestRecycledPID(t *testing.T) {
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !alive(os.Getpid(), self.startTime) || alive(os.Getpid(), self.startTime+1) {
		t.Error("alive ignores the start time")
	}
	h := newHandler(t, t.TempDir(), nil)
	r := &record{PID: os.Getpid(), StartTime: self.startTime + 1, Address: "127.9.9.9", InfraID: "i" + randHex(4), NodeID: "n"}
	_ = os.MkdirAll(h.infraDir(r.InfraID), 0o755)
	if err := h.writeRecord(r); err != nil {
		t.Fatal(err)
	}
	if st, err := h.State(context.Background(), r.handle()); err != nil || st != resource.StateShutdown {
		t.Errorf("State of a recycled pid = %s, %v; want shutdown", st, err)
	}
	// Destroy must not signal the unrelated process (us).
	if err := h.Destroy(context.Background(), r.handle()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.recordPath(r.InfraID, r.NodeID)); !errors.Is(err, os.ErrNotExist) {
		t.Error("record kept after Destroy")
	}
}

func TestReadStatOddName(t *testing.T) {
	// A command name with spaces and parentheses must not shift fields.
	dir := t.TempDir()
	exe := filepath.Join(dir, "a) b (c")
	src, err := os.Open("/bin/sleep")
	if err != nil {
		t.Skip(err)
	}
	dst, _ := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	_, _ = io.Copy(dst, src)
	src.Close()
	dst.Close()
	cmd := exec.Command(exe, "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	st, err := readStat(cmd.Process.Pid)
	if err != nil || st.startTime == 0 || st.pgrp != syscall.Getpgrp() {
		t.Errorf("readStat = %+v, %v", st, err)
	}
}

// ListAll finds the instances of every infrastructure, with the store id
// each carries in its record and environment: those with records here,
// one whose record was lost (found in /proc), one of another home (its
// process seen in /proc), one made without a store id.
func TestListAll(t *testing.T) {
	home, otherHome := t.TempDir(), t.TempDir()
	h := newHandler(t, home, map[string]any{"stop_timeout": "1s"})
	other := newHandler(t, otherHome, map[string]any{"stop_timeout": "1s"})
	ours, lost, foreign, unlabelled := spec("sleep 3600"), spec("sleep 3600"), spec("sleep 3600"), spec("sleep 3600")
	ours.StoreID, lost.StoreID, foreign.StoreID = "store-"+randHex(6), "store-"+randHex(6), "store-"+randHex(6)
	lost.NodeName = "lost"
	hds := map[string]resource.Handle{}
	for name, s := range map[string]resource.Spec{"ours": ours, "lost": lost, "unlabelled": unlabelled} {
		hds[name] = create(t, h, s)
	}
	hds["foreign"] = create(t, other, foreign)
	if err := os.Remove(filepath.Join(home, "local", lost.InfraID, lost.NodeID+".json")); err != nil {
		t.Fatal(err)
	}
	env, err := readProc(pidOf(t, hds["ours"]))
	if err != nil || env.env[EnvStoreID] != ours.StoreID {
		t.Fatalf("environment of the instance: %v, %v; want %s=%s", env.env, err, EnvStoreID, ours.StoreID)
	}

	all, err := h.ListAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]resource.Owned{}
	for _, o := range all {
		byID[o.Handle.ID] = o
	}
	for _, tc := range []struct {
		name string
		spec resource.Spec
	}{{"ours", ours}, {"lost", lost}, {"foreign", foreign}, {"unlabelled", unlabelled}} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := byID[hds[tc.name].ID]
			if !ok {
				t.Fatalf("ListAll (%d instances) lacks pid %s", len(all), hds[tc.name].ID)
			}
			if o.InfraID != tc.spec.InfraID || o.NodeID != tc.spec.NodeID || o.NodeName != tc.spec.NodeName || o.StoreID != tc.spec.StoreID {
				t.Errorf("ListAll has %+v, want infra %s node %s name %s store %q", o, tc.spec.InfraID, tc.spec.NodeID, tc.spec.NodeName, tc.spec.StoreID)
			}
			if st, err := h.State(context.Background(), o.Handle); err != nil || st != resource.StateRunning {
				t.Errorf("State of the listed handle = %s, %v", st, err)
			}
		})
	}
	// The handle ListAll gave is enough to remove the instance whose
	// record was lost (what a sweep does).
	pid := pidOf(t, hds["lost"])
	if err := h.Destroy(context.Background(), byID[hds["lost"].ID].Handle); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lost instance to end", func() bool { return !alive(pid, 0) })
}

// TestDestroyLeavesNothing: an infrastructure's records, logs and
// directory under $OCCOPUS_HOME go with its last instance.
func TestDestroyLeavesNothing(t *testing.T) {
	home := t.TempDir()
	h := newHandler(t, home, nil)
	a := spec("sh", "-c", "echo hello; sleep 60")
	b := a
	b.NodeID = randHex(8)
	var hds []resource.Handle
	for _, s := range []resource.Spec{a, b} {
		hd, err := h.Create(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		hds = append(hds, hd)
	}
	dir := filepath.Join(home, "local", a.InfraID)
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 4 {
		t.Fatalf("files while running: %v, want a record and a log each", files)
	}
	if err := h.Destroy(context.Background(), hds[0]); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 2 {
		t.Errorf("files after one destroy: %v, want the other instance's two", files)
	}
	if err := h.Destroy(context.Background(), hds[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		t.Errorf("%s is left (%v): %v", dir, err, files)
	}
}
