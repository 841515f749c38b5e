package bench

// Building examples/docker-ping with the engine, against the raw floor: the
// same containers started one by one with the Docker Engine Go client.
//
//	go test ./bench -run '^$' -bench DockerPing -benchtime=5x -count=3 -timeout 30m
//
// BENCH_TRACE=1 logs the time of every step (engine events, floor phases).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/google/uuid"
	probing "github.com/prometheus-community/pro-bing"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/resolve"
	"github.com/occopus-go/occopus/resource/docker"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/sqlite"

	_ "github.com/occopus-go/occopus/contextualise/dockerctx"
	_ "github.com/occopus-go/occopus/health"
)

const exampleDir = "../examples/docker-ping"

// shapes: the example as is, and with the sender scaled to 6, so that one
// level has 6 creations the engine may run concurrently.
var shapes = []int{1, 6}

// infraSrc is the example's infra.yaml with the sender's scaling set to
// senders (unchanged for 1).
func infraSrc(tb testing.TB, senders int) []byte {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(exampleDir, "infra.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if senders == 1 {
		return src
	}
	const at = "    type: docker_ping_sender\n"
	if !bytes.Contains(src, []byte(at)) {
		tb.Fatalf("%s/infra.yaml changed: no %q line to scale", exampleDir, strings.TrimSpace(at))
	}
	// The example's own one-line scaling (if any) gives way to the shape's.
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(at) + `(    scaling: .*\n)?`)
	return re.ReplaceAll(src, fmt.Appendf(nil, "%s    scaling: {min: %d, max: %d}\n", at, senders, senders))
}

// spec is one container of the floor, as the engine would resolve it.
type spec struct {
	node     string
	endpoint string
	image    string // name:tag
	env      []string
	cmd      []string
}

// placeholders answers getip() & co. with a marker that the floor replaces
// with the real address once the named node runs.
type placeholders struct{}

func marker(node string) string                        { return "@ip(" + node + ")" }
func (placeholders) IP(n string) (string, error)       { return marker(n), nil }
func (placeholders) PrivIP(n string) (string, error)   { return marker(n), nil }
func (placeholders) AllIPs(n string) ([]string, error) { return []string{marker(n)}, nil }

// example loads the node definitions and the description (with senders
// senders) and resolves every instance, level by level, with the engine's
// own resolver: the floor starts exactly what the engine starts.
func example(tb testing.TB, senders int) (*descr.NodeDefs, *descr.Infra, []spec) {
	tb.Helper()
	defs, err := descr.LoadNodeDefs(filepath.Join(exampleDir, "nodes.yaml"), descr.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	in, err := descr.ParseInfra("infra.yaml", infraSrc(tb, senders), descr.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := compile.Compile(in)
	if err != nil {
		tb.Fatal(err)
	}
	var specs []spec
	for _, level := range st.Levels {
		for _, name := range level {
			n := st.ByName[name]
			impls := defs.Impls[n.Type]
			if len(impls) != 1 {
				tb.Fatalf("node type %s has %d implementations, want 1", n.Type, len(impls))
			}
			r, err := resolve.Resolve(resolve.Input{InfraName: st.Name, UserID: st.UserID, NodeID: "x", Node: n, Addresses: placeholders{}}, impls[0])
			if err != nil {
				tb.Fatal(err)
			}
			str := func(k string) string { s, _ := r.Resource[k].(string); return s }
			if str("type") != "docker" || str("origin") != "local" {
				tb.Fatalf("node %s: want a docker resource with origin local, got %v", name, r.Resource)
			}
			cmd := r.Context.Command
			if len(cmd) == 1 { // one string: split as the docker handler does (no quotes here)
				cmd = strings.Fields(cmd[0])
			}
			for range n.Min {
				specs = append(specs, spec{node: name, endpoint: str("endpoint"), image: str("image") + ":" + str("tag"), env: r.Context.Env, cmd: cmd})
			}
		}
	}
	return defs, in, specs
}

// TestExample is the cheap check of the plain test run: the example still
// has the shape the benchmarks assume, and the floor's containers are the
// ones the engine would make.
func TestExample(t *testing.T) {
	_, _, specs := example(t, 6)
	if len(specs) != 7 {
		t.Fatalf("got %d containers, want 7", len(specs))
	}
	r, s := specs[0], specs[1]
	want := spec{node: "ping-receiver", endpoint: "unix:///var/run/docker.sock", image: "occopus/busybox-helloworld:latest",
		env: []string{"message=Hello from the receiver"}, cmd: []string{"sh", "-c", "/root/start.sh"}}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("receiver: got %+v, want %+v", r, want)
	}
	if s.node != "ping-sender" || s.image != "occopus/busybox-ping:latest" || fmt.Sprint(s.env) != "[target_ip=@ip(ping-receiver)]" {
		t.Errorf("sender: got %+v", s)
	}
}

var (
	imagesOnce sync.Once
	imagesErr  error
)

// setup connects to the example's Docker endpoint (skipping the benchmark
// when there is none) and builds the example's images when missing.
func setup(b *testing.B, specs []spec) *client.Client {
	b.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(specs[0].endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		b.Skipf("Docker is unavailable: %v", err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		b.Skipf("Docker is unavailable at %s: %v", specs[0].endpoint, err)
	}
	b.Cleanup(func() { cli.Close() })
	imagesOnce.Do(func() {
		for _, s := range specs {
			if _, err := cli.ImageInspect(ctx, s.image); err != nil {
				out, err := exec.Command("sh", "../images/build.sh").CombinedOutput()
				if err != nil {
					imagesErr = fmt.Errorf("images/build.sh: %v\n%s", err, out)
				}
				return
			}
		}
	})
	if imagesErr != nil {
		b.Fatal(imagesErr)
	}
	return cli
}

// removeInfra removes every container labelled with the infra id.
func removeInfra(tb testing.TB, cli *client.Client, infraID string) {
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelInfraID+"="+infraID))})
	if err != nil {
		tb.Errorf("list containers of %s: %v", infraID, err)
		return
	}
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			tb.Errorf("remove container %s: %v", c.ID, err)
		}
	}
}

func tracing() bool { return os.Getenv("BENCH_TRACE") != "" }

// BenchmarkDockerPing builds the example (senders=1) and its 6-sender
// variant (senders=6) with the engine, sequentially (seq) and with
// Parallelize (par). Every iteration also runs the floor on the same
// containers, untimed and in alternating order, so that both see the same
// machine: ns/op is the engine's build, floor-ns/op the floor's and
// x-floor their ratio (sum over the iterations). Teardown is untimed.
func BenchmarkDockerPing(b *testing.B) {
	for _, senders := range shapes {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			defs, in, specs := example(b, senders)
			cli := setup(b, specs)
			b.Run("seq", func(b *testing.B) { benchPair(b, cli, defs, in, specs, false) })
			b.Run("par", func(b *testing.B) { benchPair(b, cli, defs, in, specs, true) })
		})
	}
}

func benchPair(b *testing.B, cli *client.Client, defs *descr.NodeDefs, in *descr.Infra, specs []spec, parallel bool) {
	ctx := b.Context()
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "occopus.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	raw := map[string]json.RawMessage{}
	for _, typ := range defs.Types {
		if raw[typ], err = defs.JSON(typ); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.PutNodeDefs(ctx, raw); err != nil {
		b.Fatal(err)
	}
	runFloor := func() time.Duration {
		infraID := uuid.NewString()
		b.Cleanup(func() { removeInfra(b, cli, infraID) })
		t0 := time.Now()
		if err := floor(ctx, b, specs, infraID); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		removeInfra(b, cli, infraID)
		return d
	}
	runFloor() // warm-up, not counted
	var floorTotal, engineTotal time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if i%2 == 0 {
			floorTotal += runFloor()
		}
		// A new engine per build, as each `occopus build` is a new process
		// (new handlers, new Docker client).
		opt := engine.Options{Home: dir, Parallelize: parallel}
		t0 := time.Now()
		if tracing() {
			opt.OnEvent = func(ev store.Event) {
				if ev.Kind == "instance.state" {
					b.Logf("%8.1fms engine %s %s -> %s", float64(time.Since(t0).Microseconds())/1000, ev.NodeName, ev.From, ev.To)
				}
			}
		}
		eng := engine.New(st, opt)
		b.Cleanup(func() { eng.Close() })
		b.StartTimer()
		t0 = time.Now()
		id, err := eng.Submit(ctx, in, "")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { removeInfra(b, cli, id) })
		if _, err := eng.Build(ctx, id, engine.BuildOptions{}); err != nil {
			b.Fatal(err)
		}
		engineTotal += time.Since(t0)
		b.StopTimer()
		// Killing first spares Destroy the senders' slow stop (their
		// `ping -c 5` holds off SIGTERM); Destroy then cleans the store.
		removeInfra(b, cli, id)
		if _, err := eng.Destroy(context.WithoutCancel(ctx), id, false); err != nil {
			b.Error(err)
		}
		if i%2 == 1 {
			floorTotal += runFloor()
		}
		i++
		b.StartTimer()
	}
	b.ReportMetric(float64(floorTotal.Nanoseconds())/float64(i), "floor-ns/op")
	b.ReportMetric(float64(engineTotal)/float64(floorTotal), "x-floor")
}

// floor starts the containers one by one, each with its own client as a
// fresh process would have: create, start, inspect until it runs with an
// address, then ping it from the host until the first reply (the
// example's `ping: true` health check), and only then the next one.
func floor(ctx context.Context, b *testing.B, specs []spec, infraID string) error {
	t0 := time.Now()
	trace := func(format string, args ...any) {
		if tracing() {
			b.Logf("%8.1fms floor "+format, append([]any{float64(time.Since(t0).Microseconds()) / 1000}, args...)...)
		}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(specs[0].endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ips := map[string]string{}
	yes := true
	for _, s := range specs {
		nodeID := uuid.NewString()
		env := make([]string, len(s.env))
		for i, e := range s.env {
			for node, ip := range ips {
				e = strings.ReplaceAll(e, marker(node), ip)
			}
			if strings.Contains(e, "@ip(") {
				return fmt.Errorf("floor: %s: %s needs an address not known yet", s.node, e)
			}
			env[i] = e
		}
		resp, err := cli.ContainerCreate(ctx,
			&container.Config{Image: s.image, Env: env, Cmd: s.cmd, Labels: map[string]string{
				docker.LabelInfraID: infraID, docker.LabelNodeID: nodeID, docker.LabelNodeName: s.node}},
			&container.HostConfig{NetworkMode: "bridge", Init: &yes}, nil, nil, docker.ContainerName(infraID, nodeID))
		if err != nil {
			return err
		}
		trace("%s created", s.node)
		if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			return err
		}
		trace("%s started", s.node)
		ip, err := running(ctx, cli, resp.ID)
		if err != nil {
			return err
		}
		trace("%s running at %s", s.node, ip)
		if err := pingOnce(ctx, ip); err != nil {
			return err
		}
		trace("%s answered a ping", s.node)
		if _, ok := ips[s.node]; !ok {
			ips[s.node] = ip
		}
	}
	return nil
}

// running inspects the container until it runs and has an address.
func running(ctx context.Context, cli *client.Client, id string) (string, error) {
	for {
		c, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return "", err
		}
		if c.State != nil && c.State.Running && c.NetworkSettings != nil {
			if ep := c.NetworkSettings.Networks["bridge"]; ep != nil && ep.IPAddress != "" {
				return ep.IPAddress, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pingOnce sends ICMP echo requests 50 ms apart until the first reply.
func pingOnce(ctx context.Context, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		pg, err := probing.NewPinger(ip)
		if err != nil {
			return err
		}
		pg.SetPrivileged(os.Geteuid() == 0)
		pg.Count, pg.Interval, pg.Timeout = 20, 50*time.Millisecond, time.Second
		pg.OnRecv = func(*probing.Packet) { pg.Stop() }
		if err := pg.RunWithContext(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		if pg.Statistics().PacketsRecv > 0 {
			return nil
		}
	}
	return fmt.Errorf("floor: no ping reply from %s", ip)
}
