//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/occopus-go/occopus/resource/docker"
	"github.com/occopus-go/occopus/resource/ec2"
	"github.com/occopus-go/occopus/resource/ec2/ec2fake"
	"github.com/occopus-go/occopus/store/sqlite"
)

// Knobs (environment):
//
//	CHAOS_SEED       seed of the instants, phases and throttling (default: the clock; printed)
//	CHAOS_KILLS      kill -9 trials per backend (default 50)
//	CHAOS_SIGINTS    SIGINT trials per backend (default 20)
//	CHAOS_BACKENDS   comma-separated: docker, ec2 (default both)
//	CHAOS_THROTTLE   fraction of EC2 requests throttled (default 0.3)

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// The infrastructure of every trial: base, then worker, which scale
// trials grow from 1 to 3.
const infraYAML = `infra_name: chaos
nodes:
  - &B
    name: base
    type: chaos_base
    scaling:
      min: 1
      max: 1
  - &W
    name: worker
    type: chaos_worker
    scaling:
      min: 1
      max: 3
dependencies:
  - [*W, *B]
`

const scaleBy = 2 // the scale-up of a scale trial: worker 1 → 3

// targets is the most instances each node may have in a trial of phase.
func targets(phase string) map[string]int {
	if phase == "scale-up" {
		return map[string]int{"base": 1, "worker": 1 + scaleBy}
	}
	return map[string]int{"base": 1, "worker": 1}
}

const dockerNodeDefs = `'node_def:chaos_base':
  - resource: &busybox
      type: docker
      origin: local
      image: occopus/busybox
      tag: latest
    contextualisation:
      type: docker
      command: "httpd -f -p 8080"
    health_check:
      ping: false
      ports: [8080]

'node_def:chaos_worker':
  - resource: *busybox
    contextualisation:
      type: docker
      env: ["base_ip={{ getip('base') }}"]
      command: "httpd -f -p 8080"
    health_check:
      ping: false
      ports: [8080]
`

// ec2NodeDefs takes the fake's URL and region (twice).
const ec2NodeDefs = `'node_def:chaos_base':
  - resource:
      type: ec2
      endpoint: %[1]s
      regionname: %[2]s
      image_id: ami-0123456789abcdef0
      instance_type: t3.micro
    contextualisation:
      type: cloudinit
      context_template: |
        #cloud-config
        write_files:
        - content: "{{ name }} {{ node_id }}\n"
          path: /tmp/who.txt
    health_check:
      ping: false

'node_def:chaos_worker':
  - resource:
      type: ec2
      endpoint: %[1]s
      regionname: %[2]s
      image_id: ami-0123456789abcdef0
      instance_type: t3.micro
    contextualisation:
      type: cloudinit
      context_template: |
        #cloud-config
        write_files:
        - content: "{{ name }} {{ node_id }} after {{ getip('base') }}\n"
          path: /tmp/who.txt
    health_check:
      ping: false
`

// backend is one resource backend under test, seen from its own side.
type backend struct {
	name               string
	nodeDefs, authData string
	// start begins watching the resources of the store with this id.
	start func(t *testing.T, storeID string)
	// live counts the store's resources that exist at the backend now.
	live func(ctx context.Context) (int, error)
	// peaks returns, for every "infraID/nodeName", the most resources of
	// that node that existed at once so far, everything up to now seen.
	peaks func(ctx context.Context) (map[string]int, error)
	// purge removes every resource of the store behind the CLI's back
	// (after a trial that left some, so the next one starts clean).
	purge func(ctx context.Context) error
	// note is a line of backend figures for the table.
	note func() string
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

// requireOrSkip skips, or fails under CI=true.
func requireOrSkip(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: required)")
	}
	t.Skip(msg)
}

func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
	}
	kills, ints := envInt(t, "CHAOS_KILLS", 50), envInt(t, "CHAOS_SIGINTS", 20)
	throttle := 0.3
	if s := os.Getenv("CHAOS_THROTTLE"); s != "" {
		var err error
		if throttle, err = strconv.ParseFloat(s, 64); err != nil || throttle < 0 || throttle > 1 {
			t.Fatalf("CHAOS_THROTTLE=%q: want a fraction from 0 to 1", s)
		}
	}
	names := []string{"docker", "ec2"}
	if s := os.Getenv("CHAOS_BACKENDS"); s != "" {
		names = strings.Split(s, ",")
	}
	t.Logf("chaos: seed %d (CHAOS_SEED=%d repeats it), %d kill -9 and %d SIGINT per backend, backends %v", seed, seed, kills, ints, names)
	bin := occBinary(t)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			var b *backend
			switch name {
			case "docker":
				b = dockerBackend(t)
			case "ec2":
				b = ec2Backend(t, throttle, seed)
			default:
				t.Fatalf("CHAOS_BACKENDS: unknown backend %q (docker, ec2)", name)
			}
			r := &runner{t: t, bin: bin, b: b, rng: rand.New(rand.NewPCG(seed, uint64(i)))}
			r.run(kills, ints)
		})
	}
}

// occBinary builds cmd/occopus from this tree.
func occBinary(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository from the test source")
	}
	bin := filepath.Join(t.TempDir(), "occopus")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/occopus")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/occopus: %v\n%s", err, out)
	}
	return bin
}

// ---------------------------------------------------------------- docker

// dockerWatch follows the engine's container events of one store: every
// create and destroy, in the engine's order, so the most containers of a
// node that existed at once is exact, not sampled.
type dockerWatch struct {
	mu        sync.Mutex
	now, peak map[string]int
	markers   map[string]chan struct{} // marker label → closed at its destroy event
	err       error
	cli       *client.Client
	storeID   string
}

const markerLabel = "chaos.marker"

func (w *dockerWatch) follow(ctx context.Context) {
	msgs, errs := w.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", docker.LabelStoreID+"="+w.storeID),
	)})
	for {
		select {
		case m := <-msgs:
			w.event(m)
		case err := <-errs:
			if ctx.Err() == nil {
				w.mu.Lock()
				w.err = fmt.Errorf("docker events: %w", err)
				w.mu.Unlock()
			}
			return
		}
	}
}

func (w *dockerWatch) event(m events.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := m.Actor.Attributes
	if mk := a[markerLabel]; mk != "" {
		if ch := w.markers[mk]; ch != nil && m.Action == events.ActionDestroy {
			close(ch)
			delete(w.markers, mk)
		}
		return
	}
	k := a[docker.LabelInfraID] + "/" + a[docker.LabelNodeName]
	switch m.Action {
	case events.ActionCreate:
		w.now[k]++
		w.peak[k] = max(w.peak[k], w.now[k])
	case events.ActionDestroy:
		w.now[k]--
	}
}

// flush returns once every event before it was seen: it makes and
// removes a marker container and waits for the marker's destroy event,
// which the engine sends after all earlier ones.
func (w *dockerWatch) flush(ctx context.Context) error {
	mk := fmt.Sprintf("m%d", time.Now().UnixNano())
	done := make(chan struct{})
	w.mu.Lock()
	w.markers[mk] = done
	w.mu.Unlock()
	c, err := w.cli.ContainerCreate(ctx, &container.Config{
		Image: "occopus/busybox:latest", Cmd: []string{"true"},
		Labels: map[string]string{docker.LabelStoreID: w.storeID, markerLabel: mk},
	}, nil, nil, nil, "")
	if err != nil {
		return fmt.Errorf("marker container: %w", err)
	}
	if err := w.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
		return fmt.Errorf("remove marker container: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("the marker's destroy event did not come: %w", ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func dockerBackend(t *testing.T) *backend {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	pctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		requireOrSkip(t, "no Docker engine answers: "+err.Error())
	}
	if _, err := cli.ImageInspect(pctx, "occopus/busybox:latest"); err != nil {
		t.Fatalf("image occopus/busybox:latest: %v (images/build.sh makes it)", err)
	}
	w := &dockerWatch{cli: cli, now: map[string]int{}, peak: map[string]int{}, markers: map[string]chan struct{}{}}
	return &backend{
		name: "docker", nodeDefs: dockerNodeDefs,
		start: func(t *testing.T, storeID string) {
			w.storeID = storeID
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); w.follow(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			// The subscription is live once an event comes through it.
			fctx, fcancel := context.WithTimeout(t.Context(), time.Minute)
			defer fcancel()
			if err := w.flush(fctx); err != nil {
				t.Fatal(err)
			}
		},
		live: func(ctx context.Context) (int, error) {
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
				filters.Arg("label", docker.LabelStoreID+"="+w.storeID), filters.Arg("label", docker.LabelInfraID))})
			return len(cs), err
		},
		purge: func(ctx context.Context) error {
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
				filters.Arg("label", docker.LabelStoreID+"="+w.storeID))})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
					return err
				}
			}
			return nil
		},
		peaks: func(ctx context.Context) (map[string]int, error) {
			if err := w.flush(ctx); err != nil {
				return nil, err
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			out := make(map[string]int, len(w.peak))
			for k, v := range w.peak {
				out[k] = v
			}
			return out, nil
		},
		note: func() string {
			return "backend view: docker ps -a by label " + docker.LabelStoreID + ", peaks from the engine's events"
		},
	}
}

// ------------------------------------------------------------------- ec2

// ec2Backend runs the fake in this process, on loopback; the CLI
// processes reach it through the endpoint of the node definitions, and
// the credentials of auth_data.yaml in their $OCCOPUS_HOME.
func ec2Backend(t *testing.T, throttle float64, seed uint64) *backend {
	// A create takes a while, as at a cloud, so that signals find
	// RunInstances calls under way, not only the process starting; and
	// a create a killed process had sent is carried out, as at a cloud.
	fake := ec2fake.New(ec2fake.Options{Throttle: throttle, ThrottleSeed: seed, RunLatency: 300 * time.Millisecond, FinishAbandoned: true})
	t.Cleanup(fake.Close)
	return &backend{
		name:     "ec2",
		nodeDefs: fmt.Sprintf(ec2NodeDefs, fake.URL(), fake.Region()),
		authData: fmt.Sprintf("resource:\n  - type: ec2\n    endpoint: %s\n    auth_data:\n      accesskey: %s\n      secretkey: chaos-secret-key-0123456789\n",
			fake.URL(), fake.AccessKey()),
		start: func(*testing.T, string) {},
		live: func(ctx context.Context) (int, error) {
			// A create a killed process sent may still be under way;
			// what it makes belongs to this trial.
			for fake.InFlight() > 0 {
				select {
				case <-ctx.Done():
					return 0, fmt.Errorf("RunInstances still under way: %w", ctx.Err())
				case <-time.After(10 * time.Millisecond):
				}
			}
			return fake.Live(), nil
		},
		purge: func(context.Context) error {
			for _, in := range fake.Instances() {
				fake.Kill(in.ID)
			}
			return nil
		},
		peaks: func(context.Context) (map[string]int, error) {
			return fake.PeakLive(ec2.TagInfraID, ec2.TagNodeName), nil
		},
		note: func() string {
			return fmt.Sprintf("backend view: the fake's instance list; %d requests, %d throttled (%.0f %%), %d instances made",
				fake.TotalCalls(), fake.Throttled(), 100*float64(fake.Throttled())/float64(max(fake.TotalCalls(), 1)), fake.Created())
		},
	}
}

// ---------------------------------------------------------------- runner

var phases = []string{"build", "scale-up", "destroy"}

type trial struct {
	n            int
	sig          string // "kill -9", "SIGINT"
	phase        string
	delay        time.Duration
	infra        string
	ran          bool   // the process still ran at the instant
	outcome      string // of the signalled process
	setup        string // what failed before the signal, if anything
	heal, remove []string
	healLog      string // stderr of the heal passes
	left         int
	records      int
	dups         []string
}

type runner struct {
	t    *testing.T
	bin  string
	b    *backend
	rng  *rand.Rand
	home string
	dirs string // node definitions and description
	hist map[string]int
	// span is how long each phase's command ran uninterrupted.
	span  map[string]time.Duration
	peaks map[string]int // seen up to the last trial
}

type result struct {
	code   int
	how    string // "exit N", "killed", "signal: interrupt", "hung"
	stdout string
	stderr string
	took   time.Duration
}

func (r *runner) cmd(ctx context.Context, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OCCOPUS_HOME=") }),
		"OCCOPUS_HOME="+r.home)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 10 * time.Second
	return cmd, &o, &e
}

func describe(st *os.ProcessState, err error) (int, string) {
	if st == nil {
		return -1, "not started: " + err.Error()
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if ws.Signal() == syscall.SIGKILL {
			return -1, "killed"
		}
		return -1, "signal: " + ws.Signal().String()
	}
	return st.ExitCode(), fmt.Sprintf("exit %d", st.ExitCode())
}

// occ runs the binary to its end (bounded: a command that hangs is a
// finding, named "hung").
func (r *runner) occ(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd, o, e := r.cmd(ctx, args...)
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: o.String(), stderr: e.String(), took: time.Since(start)}
	res.code, res.how = describe(cmd.ProcessState, err)
	if ctx.Err() != nil {
		res.how = "hung"
	}
	return res
}

// signalled starts the binary, sends sig after delay unless it ended
// before, and waits for its end.
func (r *runner) signalled(sig syscall.Signal, delay time.Duration, args ...string) (result, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd, o, e := r.cmd(ctx, args...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start occopus %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ran := false
	var err error
	timer := time.NewTimer(delay)
	select {
	case err = <-done:
		timer.Stop()
	case <-timer.C:
		ran = cmd.Process.Signal(sig) == nil
		err = <-done
	}
	res := result{stdout: o.String(), stderr: e.String(), took: time.Since(start)}
	res.code, res.how = describe(cmd.ProcessState, err)
	if ctx.Err() != nil {
		res.how = "hung"
	}
	return res, ran
}

func (r *runner) record(what string, res result) string {
	r.hist[what+": "+res.how]++
	return res.how
}

// listed is the infrastructure ids `maintain -l` lists.
func (r *runner) listed() []string {
	res := r.occ("maintain", "-l")
	r.record("maintain -l", res)
	if res.code != 0 {
		r.t.Errorf("maintain -l: %s\n%s", res.how, res.stderr)
		return nil
	}
	var ids []string
	for _, line := range strings.Split(res.stdout, "\n")[1:] {
		if id := uuidRE.FindString(line); id != "" && strings.HasPrefix(line, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// build builds the infrastructure uninterrupted, for the trials that
// signal a later command.
func (r *runner) build() (string, result) {
	res := r.occ("build", filepath.Join(r.dirs, "infra.yaml"))
	r.record("build (setup)", res)
	id := ""
	if lines := strings.Fields(res.stdout); res.code == 0 && len(lines) > 0 && uuidRE.MatchString(lines[len(lines)-1]) {
		id = lines[len(lines)-1]
	}
	return id, res
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (r *runner) setUp() {
	t := r.t
	r.home, r.dirs = t.TempDir(), t.TempDir()
	r.hist, r.span, r.peaks = map[string]int{}, map[string]time.Duration{}, map[string]int{}
	for name, text := range map[string]string{"nodes.yaml": r.b.nodeDefs, "infra.yaml": infraYAML} {
		if err := os.WriteFile(filepath.Join(r.dirs, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r.b.authData != "" {
		if err := os.WriteFile(filepath.Join(r.home, "auth_data.yaml"), []byte(r.b.authData), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if res := r.occ("import", filepath.Join(r.dirs, "nodes.yaml")); res.code != 0 {
		t.Fatalf("import: %s\n%s", res.how, res.stderr)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(r.home, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.ID(t.Context())
	st.Close()
	if err != nil || id == "" {
		t.Fatalf("store id: %q %v", id, err)
	}
	r.b.start(t, id)
	t.Cleanup(func() { // what a run that stopped half-way left
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, id := range r.listed() {
			r.occ("destroy", "--force", "-i", id)
		}
		_ = r.b.purge(ctx)
	})
}

// calibrate runs each phase's command a few times, uninterrupted: the
// signals then come at uniform instants within the shortest of its runs,
// so that nearly all of them find it still running.
func (r *runner) calibrate() {
	t := r.t
	const rounds = 3
	shortest := func(ph string, d time.Duration) {
		if cur, ok := r.span[ph]; !ok || d < cur {
			r.span[ph] = d
		}
	}
	for range rounds {
		id, res := r.build()
		if id == "" {
			t.Fatalf("calibration build: %s\n%s", res.how, tail(res.stderr, 20))
		}
		shortest("build", res.took)
		if res := r.occ("scale", "-i", id, "-n", "worker", "-c", strconv.Itoa(scaleBy)); res.code != 0 {
			t.Fatalf("calibration scale: %s\n%s", res.how, res.stderr)
		}
		res = r.occ("maintain", "-i", id)
		if res.code != 0 {
			t.Fatalf("calibration maintain: %s\n%s", res.how, tail(res.stderr, 20))
		}
		shortest("scale-up", res.took)
		res = r.occ("destroy", "-i", id)
		if res.code != 0 {
			t.Fatalf("calibration destroy: %s\n%s", res.how, tail(res.stderr, 20))
		}
		shortest("destroy", res.took)
		if n, err := r.b.live(t.Context()); err != nil || n != 0 {
			t.Fatalf("after the calibration destroy: %d left, %v", n, err)
		}
	}
	// The calibration's own peaks are not the first trial's.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	peaks, err := r.b.peaks(ctx)
	if err != nil {
		t.Fatalf("peaks after the calibration: %v", err)
	}
	for k, n := range peaks {
		if n > targets("scale-up")[k[strings.LastIndex(k, "/")+1:]] {
			t.Errorf("calibration: %s had %d instances at once", k, n)
		}
	}
	r.peaks = peaks
	t.Logf("%s: shortest of %d uninterrupted runs: build %v, scale-up maintain %v, destroy %v", r.b.name, rounds,
		r.span["build"].Round(time.Millisecond), r.span["scale-up"].Round(time.Millisecond), r.span["destroy"].Round(time.Millisecond))
}

func (r *runner) run(kills, ints int) {
	t := r.t
	began := time.Now()
	r.setUp()
	r.calibrate()
	var trials []*trial
	for i := range kills + ints {
		sig := "kill -9"
		if i >= kills {
			sig = "SIGINT"
		}
		trials = append(trials, &trial{sig: sig, phase: phases[i%len(phases)]})
	}
	r.rng.Shuffle(len(trials), func(i, j int) { trials[i], trials[j] = trials[j], trials[i] })
	for i, tr := range trials {
		tr.n = i + 1
		tr.delay = time.Duration(r.rng.Float64() * float64(r.span[tr.phase]))
	}
	for _, tr := range trials {
		r.trial(tr)
		t.Logf("%s %2d/%d %-7s %-8s at %7v: %-16s heal %v, destroy %v; left %d, records %d%s%s", r.b.name, tr.n, len(trials),
			tr.sig, tr.phase, tr.delay.Round(time.Millisecond), tr.outcome+map[bool]string{false: " (ended first)", true: ""}[tr.ran],
			tr.heal, tr.remove, tr.left, tr.records, map[bool]string{true: ", DUPLICATES " + strings.Join(tr.dups, " "), false: ""}[len(tr.dups) > 0],
			map[bool]string{true: ", setup: " + tr.setup, false: ""}[tr.setup != ""])
	}
	r.table(trials, time.Since(began))
}

func (r *runner) trial(tr *trial) {
	t := r.t
	sig := syscall.SIGKILL
	if tr.sig == "SIGINT" {
		sig = syscall.SIGINT
	}
	key := map[string]string{"build": "build", "scale-up": "maintain scale-up", "destroy": "destroy"}[tr.phase] + " (" + tr.sig + ")"
	var res result
	switch tr.phase {
	case "build":
		res, tr.ran = r.signalled(sig, tr.delay, "build", filepath.Join(r.dirs, "infra.yaml"))
		tr.infra = uuidRE.FindString(res.stderr)
	case "scale-up":
		var setup result
		tr.infra, setup = r.build()
		if tr.infra == "" {
			tr.setup = "build " + setup.how
			break
		}
		if sres := r.occ("scale", "-i", tr.infra, "-n", "worker", "-c", strconv.Itoa(scaleBy)); sres.code != 0 {
			tr.setup = "scale " + sres.how
			break
		}
		res, tr.ran = r.signalled(sig, tr.delay, "maintain", "-i", tr.infra)
	case "destroy":
		var setup result
		tr.infra, setup = r.build()
		if tr.infra == "" {
			tr.setup = "build " + setup.how
			break
		}
		res, tr.ran = r.signalled(sig, tr.delay, "destroy", "-i", tr.infra)
	}
	if tr.setup != "" {
		r.hist[key+": not run (setup failed)"]++
		tr.outcome = "not run"
	} else {
		tr.outcome = r.record(key, res)
		if res.how == "hung" {
			t.Errorf("trial %d: %s hung\n%s", tr.n, key, tail(res.stderr, 20))
		}
	}
	// Heal what is listed, then destroy what is listed.
	for _, id := range r.listed() {
		hres := r.occ("maintain", "-i", id)
		tr.heal = append(tr.heal, r.record("maintain (heal)", hres))
		tr.healLog += hres.stderr
		if hres.code != 0 {
			t.Logf("trial %d: maintain -i %s: %s\n%s", tr.n, id, hres.how, tail(hres.stderr, 10))
		}
	}
	for _, id := range r.listed() {
		dres := r.occ("destroy", "-i", id)
		tr.remove = append(tr.remove, r.record("destroy", dres))
		if dres.code != 0 {
			t.Logf("trial %d: destroy -i %s: %s\n%s", tr.n, id, dres.how, tail(dres.stderr, 10))
		}
	}
	tr.records = len(r.listed())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := r.b.live(ctx)
	if err != nil {
		t.Fatalf("trial %d: counting what is left: %v", tr.n, err)
	}
	tr.left = n
	peaks, err := r.b.peaks(ctx)
	if err != nil {
		t.Fatalf("trial %d: peaks: %v", tr.n, err)
	}
	// The peaks new since the last trial are this trial's infrastructure
	// (trials run one after another).
	want := targets(tr.phase)
	keys := make([]string, 0, len(peaks))
	for k := range peaks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if peaks[k] == r.peaks[k] {
			continue
		}
		node := k[strings.LastIndex(k, "/")+1:]
		if limit, ok := want[node]; !ok || peaks[k] > limit {
			tr.dups = append(tr.dups, fmt.Sprintf("%s:%d>%d", k, peaks[k], limit))
		}
	}
	r.peaks = peaks
	if tr.left > 0 || len(tr.dups) > 0 || tr.records > 0 {
		t.Errorf("trial %d (%s %s at %v, infra %s): %d left, %d records left, duplicates %v\nsignalled command's stderr:\n%s\nheal passes' stderr:\n%s",
			tr.n, tr.sig, tr.phase, tr.delay, tr.infra, tr.left, tr.records, tr.dups, tail(res.stderr, 30), tail(tr.healLog, 30))
		// The next trial starts clean, so that its figures are its own.
		r.sweep()
	}
}

// sweep removes what a failed trial left: the records, then the
// resources, behind the CLI's back.
func (r *runner) sweep() {
	for _, id := range r.listed() {
		r.occ("destroy", "--force", "-i", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.b.purge(ctx); err != nil {
		r.t.Fatalf("purge: %v", err)
	}
}

func (r *runner) table(trials []*trial, took time.Duration) {
	var b strings.Builder
	count := func(f func(*trial) bool) int {
		n := 0
		for _, tr := range trials {
			if f(tr) {
				n++
			}
		}
		return n
	}
	fmt.Fprintf(&b, "\n=== chaos %s: %d trials in %v ===\n", r.b.name, len(trials), took.Round(time.Second))
	fmt.Fprintf(&b, "%-22s %8s %8s %8s %8s\n", "signals by phase", "build", "scale-up", "destroy", "total")
	for _, sig := range []string{"kill -9", "SIGINT"} {
		fmt.Fprintf(&b, "%-22s", sig)
		for _, ph := range phases {
			fmt.Fprintf(&b, " %8d", count(func(tr *trial) bool { return tr.sig == sig && tr.phase == ph }))
		}
		fmt.Fprintf(&b, " %8d\n", count(func(tr *trial) bool { return tr.sig == sig }))
	}
	fmt.Fprintf(&b, "%-22s", "  of which hit running")
	for _, ph := range phases {
		fmt.Fprintf(&b, " %8d", count(func(tr *trial) bool { return tr.ran && tr.phase == ph }))
	}
	fmt.Fprintf(&b, " %8d\n", count(func(tr *trial) bool { return tr.ran }))
	left, dups, recs := 0, 0, 0
	for _, tr := range trials {
		left += tr.left
		dups += len(tr.dups)
		recs += tr.records
	}
	fmt.Fprintf(&b, "left after destroy:    %d (%d trials)\n", left, count(func(tr *trial) bool { return tr.left > 0 }))
	fmt.Fprintf(&b, "duplicates:            %d (%d trials)\n", dups, count(func(tr *trial) bool { return len(tr.dups) > 0 }))
	fmt.Fprintf(&b, "records left:          %d\n", recs)
	fmt.Fprintf(&b, "setup failures:        %d\n", count(func(tr *trial) bool { return tr.setup != "" }))
	fmt.Fprintf(&b, "%s\n", r.b.note())
	fmt.Fprintf(&b, "exit codes:\n")
	keys := make([]string, 0, len(r.hist))
	for k := range r.hist {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-40s %4d\n", k, r.hist[k])
	}
	r.t.Log(b.String())
}
