package cloudtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/ec2"
	"github.com/occopus-go/occopus/resource/ec2/ec2fake"
	"github.com/occopus-go/occopus/store"
)

// createLatency is how long the fake EC2 takes to answer RunInstances.
const createLatency = time.Second

// benchInfra is three levels: root, then mid (which pings root's
// address), then leaf (which pings one of mid's).
const benchInfra = `infra_name: bench-%[1]d
nodes:
  - &A
    name: root
    type: bench_node
  - &B
    name: mid
    type: bench_node
    scaling: {min: %[2]d, max: %[2]d}
    variables: {upstream: root}
  - &C
    name: leaf
    type: bench_node
    scaling: {min: %[3]d, max: %[3]d}
    variables: {upstream: mid}
dependencies:
  - connection: [*B, *A]
  - connection: [*C, *B]
`

const benchNodeDefs = `'node_def:bench_node':
  - resource:
      type: ec2
      endpoint: %s
      regionname: %s
      image_id: ami-0123456789abcdef0
      instance_type: t3.micro
    contextualisation:
      type: cloudinit
      context_template: |
        #cloud-config
        write_files:
        - content: "{{ name }} {{ node_id }} of {{ infra_id }}\n"
          path: /tmp/who.txt
        {%% if variables.upstream %%}
        runcmd:
        - ping {{ getip(variables.upstream) }} -c 5 > /tmp/ping-result.txt 2>&1
        {%% endif %%}
%s`

// shape is an infrastructure of three levels with these widths.
type shape struct{ root, mid, leaf int }

func (s shape) total() int { return s.root + s.mid + s.leaf }

var (
	shape200   = shape{1, 99, 100}
	shapeChain = shape{1, 1, 1} // the critical path: one node per level
)

// buildOnce builds one infrastructure of the shape against a fresh fake
// EC2 with a fresh Manager and store (as one `occopus build` would), and
// returns how long Manager.Build took and how many calls the fake got. It
// tears down afterwards and checks that nothing is left.
func buildOnce(b *testing.B, s shape, ping bool, rl rateLimit) (time.Duration, int) {
	b.Helper()
	fake := ec2fake.New(ec2fake.Options{RunLatency: createLatency})
	defer fake.Close()
	dir := b.TempDir()
	hc := ""
	if !ping {
		hc = "    health_check:\n      ping: false\n"
	}
	defsPath := filepath.Join(dir, "nodes.yaml")
	if err := os.WriteFile(defsPath, fmt.Appendf(nil, benchNodeDefs, fake.URL(), fake.Region(), hc), 0o600); err != nil {
		b.Fatal(err)
	}
	infraPath := filepath.Join(dir, "infra.yaml")
	if err := os.WriteFile(infraPath, fmt.Appendf(nil, benchInfra, s.total(), s.mid, s.leaf), 0o600); err != nil {
		b.Fatal(err)
	}
	defs, err := descr.LoadNodeDefs(defsPath, descr.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	in, err := descr.LoadInfra(infraPath, descr.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	authData := fmt.Sprintf("resource:\n  - type: ec2\n    endpoint: %s\n    auth_data:\n      accesskey: %s\n      secretkey: bench-secret-key-0123456789\n",
		fake.URL(), fake.AccessKey())
	widest := max(s.root, s.mid, s.leaf)
	tl := &timeline{}
	m := newManager(b, authData, managerOptions{parallelize: true, parallel: widest, onEvent: tl.record,
		rateLimit: rl.perSecond, rateBurst: rl.burst})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := m.ImportNodeDefs(ctx, defs); err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	res, err := m.Build(ctx, in, "")
	took := time.Since(start)
	if err != nil {
		b.Fatalf("build of %d nodes: %v", s.total(), err)
	}
	calls := fake.TotalCalls()
	if testing.Verbose() {
		// When RunInstances answers were made (arrival + latency), per node:
		// the spread is how far apart the level's creations started.
		made := map[string][2]time.Duration{}
		for _, in := range fake.Instances() {
			n, at := in.Tags[ec2.TagNodeName], in.Created.Sub(start)
			r, ok := made[n]
			if !ok {
				r = [2]time.Duration{at, at}
			}
			made[n] = [2]time.Duration{min(r[0], at), max(r[1], at)}
		}
		b.Logf("%d nodes in %v: first creating→last ready %s; RunInstances answered root %v, mid %v…%v, leaf %v…%v",
			s.total(), took.Round(time.Millisecond), tl.summary(start), made["root"][0].Round(time.Millisecond),
			made["mid"][0].Round(time.Millisecond), made["mid"][1].Round(time.Millisecond),
			made["leaf"][0].Round(time.Millisecond), made["leaf"][1].Round(time.Millisecond))
	}

	rep, err := m.Get(ctx, res.ID)
	if err != nil {
		b.Fatal(err)
	}
	ready := 0
	for _, nr := range rep {
		for _, ir := range nr.Instances {
			if ir.State == "ready" {
				ready++
			}
		}
	}
	if ready != s.total() || fake.Created() != s.total() {
		b.Fatalf("%d ready in the report, %d made at the fake; want %d", ready, fake.Created(), s.total())
	}
	if _, err := m.TearDown(ctx, res.ID); err != nil {
		b.Fatalf("teardown: %v", err)
	}
	if n := fake.Live(); n != 0 {
		b.Fatalf("%d instances left at the fake after teardown", n)
	}
	return took, calls
}

// BenchmarkBuild200 builds 200 nodes on three levels (1 + 99 + 100)
// against the fake EC2, which takes 1 s to answer each RunInstances, with
// Parallelize and Parallel 100 (the widest level). Its floor is the
// critical path: three creations one after the other. Every iteration also
// builds a chain of three single nodes (1 + 1 + 1) the same way, which is
// that critical path with its readiness (describes, ping, store writes)
// measured on the same machine at the same time.
//
// Metrics: ns/op is the 200-node build; chain-s the chain's build;
// x-critical-path is Σ200-node / Σchain; x-3s is the 200-node build over
// the bare 3 × 1 s of latency; calls/op the EC2 requests of one build.
//
// The client-side rate limit (10/s, burst 20 per endpoint) is raised for
// this benchmark with occopus.Options.RateLimit and RateBurst;
// BenchmarkBuild200DefaultRateLimit shows what it costs. ping=false turns the default ping health check off
// to show what 200 ICMP checks cost.
func BenchmarkBuild200(b *testing.B) {
	for _, ping := range []bool{true, false} {
		b.Run(fmt.Sprintf("ping=%v", ping), func(b *testing.B) {
			benchBuild(b, shape200, ping, unlimited)
		})
	}
}

// rateLimit is the cloud rate limit of a benchmark's Manager; the zero
// value is the default.
type rateLimit struct {
	perSecond float64
	burst     int
}

var unlimited = rateLimit{1e6, 1e6}

// BenchmarkBuild200DefaultRateLimit is BenchmarkBuild200 with the ec2
// handler's default client-side rate limit (10 calls/s, burst 20, per
// endpoint): the limit, not the cloud, sets the pace.
func BenchmarkBuild200DefaultRateLimit(b *testing.B) {
	benchBuild(b, shape200, true, rateLimit{})
}

func benchBuild(b *testing.B, s shape, ping bool, rl rateLimit) {
	var total, chain time.Duration
	var calls int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Pairing: the chain is built just before each 200-node build, so
		// both see the same load on a shared machine.
		c, _ := buildOnce(b, shapeChain, ping, rl)
		chain += c
		b.StartTimer()
		d, n := buildOnce(b, s, ping, rl)
		b.StopTimer()
		// The timer ran across buildOnce's setup and teardown too;
		// ns/op is set from the build alone below.
		total += d
		calls += n
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(chain.Seconds()/float64(b.N), "chain-s")
	b.ReportMetric(total.Seconds()/chain.Seconds(), "x-critical-path")
	b.ReportMetric(total.Seconds()/(float64(b.N)*3*createLatency.Seconds()), "x-3s")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
}

// timeline records, per node name, when its first instance was recorded
// as creating and when its last became ready.
type timeline struct {
	mu    sync.Mutex
	first map[string]time.Time
	last  map[string]time.Time
}

func (t *timeline) record(ev store.Event) {
	if ev.Kind != "instance.state" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first == nil {
		t.first, t.last = map[string]time.Time{}, map[string]time.Time{}
	}
	switch ev.To {
	case store.StateCreating:
		if _, ok := t.first[ev.NodeName]; !ok {
			t.first[ev.NodeName] = time.Now()
		}
	case store.StateReady:
		t.last[ev.NodeName] = time.Now()
	}
}

func (t *timeline) summary(start time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, n := range []string{"root", "mid", "leaf"} {
		out = append(out, fmt.Sprintf("%s %v→%v", n, t.first[n].Sub(start).Round(time.Millisecond), t.last[n].Sub(start).Round(time.Millisecond)))
	}
	return strings.Join(out, ", ")
}
