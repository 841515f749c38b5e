package bench

// Readiness without lag (issue 17): builds whose health checks are ports
// and urls, against a floor that creates and starts the same containers
// with the Docker Go client in one process and probes each every 10 ms,
// keeping the levels.
//
//	go test ./bench -run '^$' -bench DockerReady -benchtime=5x -timeout 60m

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/google/uuid"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/resolve"
	"github.com/occopus-go/occopus/resource/docker"
	"github.com/occopus-go/occopus/store/sqlite"
)

// webCmd serves /tmp on port 8080 after $delay seconds (busybox httpd).
const webCmd = `echo ok > /tmp/index.html; sleep $delay; exec httpd -f -p 8080 -h /tmp`

const webDefs = `'node_def:web':
  - resource:
      type: docker
      endpoint: unix:///var/run/docker.sock
      origin: local
      image: occopus/busybox
      tag: latest
    contextualisation:
      type: docker
      env: ["delay={{ variables.delay }}", "upstream={{ getip(variables.upstream) if variables.upstream else '' }}"]
      command: "sh -c '` + webCmd + `'"
    health_check:
      ping: false
      ports: [8080]
      urls: ["http://{{ ip }}:8080/"]
`

// readyShapes: "3c" is 2 receivers (one node, scaling 2) then 1 sender
// that gets a receiver's address; "late" one node whose port opens 2 s
// after its start.
var readyShapes = map[string]string{
	"3c": `infra_name: ready-3c
nodes:
  - &R
    name: receiver
    type: web
    scaling: {min: 2, max: 2}
    variables: {delay: 0}
  - &S
    name: sender
    type: web
    variables: {delay: 0, upstream: receiver}
dependencies:
  - connection: [*S, *R]
`,
	"late": `infra_name: ready-late
nodes:
  - name: late
    type: web
    variables: {delay: 2}
`,
}

// webShape loads a shape and resolves its containers level by level.
func webShape(tb testing.TB, name string) (*descr.NodeDefs, *descr.Infra, [][]spec) {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "nodes.yaml")
	if err := writeFile(path, webDefs); err != nil {
		tb.Fatal(err)
	}
	defs, err := descr.LoadNodeDefs(path, descr.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	in, err := descr.ParseInfra("infra.yaml", []byte(readyShapes[name]), descr.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := compile.Compile(in)
	if err != nil {
		tb.Fatal(err)
	}
	var levels [][]spec
	for _, level := range st.Levels {
		var specs []spec
		for _, node := range level {
			n := st.ByName[node]
			r, err := resolve.Resolve(resolve.Input{InfraName: st.Name, UserID: st.UserID, NodeID: "x", Node: n, Addresses: placeholders{}}, defs.Impls[n.Type][0])
			if err != nil {
				tb.Fatal(err)
			}
			if len(r.Context.Command) != 1 || r.Context.Command[0] != "sh -c '"+webCmd+"'" {
				tb.Fatalf("node %s: command %q is not the floor's", node, r.Context.Command)
			}
			for range n.Min {
				specs = append(specs, spec{node: node, endpoint: "unix:///var/run/docker.sock", image: "occopus/busybox:latest",
					env: r.Context.Env, cmd: []string{"sh", "-c", webCmd}})
			}
		}
		levels = append(levels, specs)
	}
	return defs, in, levels
}

// TestReadyShapes: the shapes resolve to what the floor starts.
func TestReadyShapes(t *testing.T) {
	_, _, lv := webShape(t, "3c")
	if len(lv) != 2 || len(lv[0]) != 2 || len(lv[1]) != 1 {
		t.Fatalf("3c: levels %v", lv)
	}
	if got := fmt.Sprint(lv[1][0].env); got != "[delay=0 upstream=@ip(receiver)]" {
		t.Errorf("3c sender env %s", got)
	}
	_, _, lv = webShape(t, "late")
	if len(lv) != 1 || fmt.Sprint(lv[0][0].env) != "[delay=2 upstream=]" {
		t.Errorf("late: %v", lv)
	}
}

// BenchmarkDockerReady builds each shape with the engine (a new Engine
// per build, sequential and with Parallelize) and the floor, paired and
// alternating, as BenchmarkDockerPing does; x-floor is Σengine/Σfloor.
func BenchmarkDockerReady(b *testing.B) {
	for _, name := range []string{"3c", "late"} {
		b.Run(name, func(b *testing.B) {
			defs, in, levels := webShape(b, name)
			cli := setup(b, levels[0])
			for _, par := range []bool{false, true} {
				mode := map[bool]string{false: "seq", true: "par"}[par]
				b.Run(mode, func(b *testing.B) { benchReady(b, cli, defs, in, levels, par) })
			}
		})
	}
}

func benchReady(b *testing.B, cli *client.Client, defs *descr.NodeDefs, in *descr.Infra, levels [][]spec, par bool) {
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
		if err := webFloor(ctx, levels, infraID, par); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		removeInfra(b, cli, infraID)
		return d
	}
	runFloor() // warm-up
	var floorTotal, engineTotal time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if i%2 == 0 {
			floorTotal += runFloor()
		}
		eng := engine.New(st, engine.Options{Home: dir, Parallelize: par})
		b.StartTimer()
		t0 := time.Now()
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
		removeInfra(b, cli, id)
		if _, err := eng.Destroy(context.WithoutCancel(ctx), id, false); err != nil {
			b.Error(err)
		}
		eng.Close()
		if i%2 == 1 {
			floorTotal += runFloor()
		}
		i++
		b.StartTimer()
	}
	b.ReportMetric(float64(floorTotal.Nanoseconds())/float64(i), "floor-ns/op")
	b.ReportMetric(float64(engineTotal)/float64(floorTotal), "x-floor")
}

// webFloor starts each level's containers (one by one, or together with
// par), probes each every 10 ms until port 8080 accepts and / answers,
// and starts the next level once the whole level answers.
func webFloor(ctx context.Context, levels [][]spec, infraID string, par bool) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(levels[0][0].endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	var mu sync.Mutex
	ips := map[string]string{}
	one := func(s spec) error {
		mu.Lock()
		env := make([]string, len(s.env))
		for i, e := range s.env {
			for node, ip := range ips {
				e = strings.ReplaceAll(e, marker(node), ip)
			}
			env[i] = e
		}
		mu.Unlock()
		nodeID := uuid.NewString()
		yes := true
		resp, err := cli.ContainerCreate(ctx,
			&container.Config{Image: s.image, Env: env, Cmd: s.cmd, Labels: map[string]string{
				docker.LabelInfraID: infraID, docker.LabelNodeID: nodeID, docker.LabelNodeName: s.node}},
			&container.HostConfig{NetworkMode: "bridge", Init: &yes}, nil, nil, docker.ContainerName(infraID, nodeID))
		if err != nil {
			return err
		}
		if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			return err
		}
		ip, err := running(ctx, cli, resp.ID)
		if err != nil {
			return err
		}
		if err := probeWeb(ctx, ip); err != nil {
			return err
		}
		mu.Lock()
		if _, ok := ips[s.node]; !ok {
			ips[s.node] = ip
		}
		mu.Unlock()
		return nil
	}
	for _, level := range levels {
		if !par {
			for _, s := range level {
				if err := one(s); err != nil {
					return err
				}
			}
			continue
		}
		errs := make(chan error, len(level))
		for _, s := range level {
			go func() { errs <- one(s) }()
		}
		for range level {
			if err := <-errs; err != nil {
				return err
			}
		}
	}
	return nil
}

var floorHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// probeWeb probes ip:8080 every 10 ms: a TCP connect, then GET /.
func probeWeb(ctx context.Context, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort(ip, "8080")
	for {
		var d net.Dialer
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
			if resp, err := floorHTTP.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode < 400 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("floor: %s never answered: %w", addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
