package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/internal/etcdtest"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/etcd"
)

// The HA test: a real three-member etcd cluster on loopback
// (internal/etcdtest) and three `occopus rest-service` processes built
// from this tree, sharing the attached infrastructures (ha: on). Each
// replica reaches etcd through its own TCP proxies, so that one can be
// cut off from the cluster while the others are not.

// haTTL is the lease ttl of the test's replicas.
const haTTL = 4 * time.Second

const haNodeDefs = `'node_def:ha_sleeper':
  - resource: {type: local}
    contextualisation: {type: docker, command: ["sleep", "3600"]}
    health_check: {ping: false}
`

// proxy forwards TCP connections to target until cut, and then
// black-holes them: the connections stay open and nothing goes through,
// as when a network partition drops packets.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go p.serve()
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }() //nolint:errcheck // ends with the connection
		go func() {
			io.Copy(c, up) //nolint:errcheck // ends with the connection
			// The member went away: so does the client's connection, as
			// when a host dies and its peer's TCP resets. Once cut, it
			// stays open and silent.
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if !cut {
				c.Close()
			}
		}()
	}
}

// blackhole stops all traffic: upstream connections close (what was in
// flight is lost), client connections stay open and unanswered.
func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok && tc.RemoteAddr().String() == p.target {
			tc.Close()
		}
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// replica is one rest-service process.
type replica struct {
	name    string
	proc    *occProc
	url     string
	proxies []*proxy
	killed  time.Time // when it was killed or cut off; zero while it runs
}

// ownership is what /healthz says a replica owns.
type ownership struct {
	Owner       string   `json:"owner"`
	Owned       []string `json:"owned"`
	LeaseLosses int64    `json:"lease_losses"`
	Takeovers   int64    `json:"takeovers"`
}

func (r *replica) health(t *testing.T) (ownership, error) {
	t.Helper()
	var o ownership
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(r.url + "/healthz")
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return o, fmt.Errorf("healthz %d", resp.StatusCode)
	}
	return o, json.NewDecoder(resp.Body).Decode(&o)
}

// logLine is a line of a replica's log about ownership.
type logLine struct {
	at    time.Time
	msg   string // owning, stopped
	infra string
	lost  bool
}

var (
	reTime  = regexp.MustCompile(`^time=(\S+) `)
	reMsg   = regexp.MustCompile(`msg="([^"]*)"`)
	reInfra = regexp.MustCompile(` infra=(\S+)`)
)

// ownershipLog reads the "owning infrastructure" and "stopped maintaining
// infrastructure" lines of a replica's log, in order.
func ownershipLog(t *testing.T, text string) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := reMsg.FindStringSubmatch(line)
		if m == nil || (m[1] != "owning infrastructure" && m[1] != "stopped maintaining infrastructure") {
			continue
		}
		tm, im := reTime.FindStringSubmatch(line), reInfra.FindStringSubmatch(line)
		if tm == nil || im == nil {
			t.Fatalf("ownership line without time or infra: %s", line)
		}
		at, err := time.Parse(time.RFC3339Nano, tm[1])
		if err != nil {
			t.Fatalf("time of %q: %v", line, err)
		}
		msg := "owning"
		if strings.HasPrefix(m[1], "stopped") {
			msg = "stopped"
		}
		out = append(out, logLine{at: at, msg: msg, infra: im[1], lost: strings.Contains(line, " lost=true")})
	}
	return out
}

// interval is a span in which one replica acted on an infrastructure.
type interval struct {
	replica  string
	from, to time.Time
}

// intervals turns each replica's log into ownership spans per
// infrastructure; a span still open ends when the replica was killed or
// cut off plus the lease ttl (it may act until it notices), or now.
func intervals(t *testing.T, rs []*replica) map[string][]interval {
	t.Helper()
	out := map[string][]interval{}
	for _, r := range rs {
		open := map[string]time.Time{}
		for _, l := range ownershipLog(t, r.proc.errText()) {
			switch l.msg {
			case "owning":
				if _, dup := open[l.infra]; dup {
					t.Fatalf("%s: owning %s twice without stopping", r.name, l.infra)
				}
				open[l.infra] = l.at
			case "stopped":
				from, ok := open[l.infra]
				if !ok {
					t.Fatalf("%s: stopped %s it did not own", r.name, l.infra)
				}
				out[l.infra] = append(out[l.infra], interval{r.name, from, l.at})
				delete(open, l.infra)
			}
		}
		end := time.Now()
		if !r.killed.IsZero() {
			end = r.killed
		}
		for id, from := range open {
			out[id] = append(out[id], interval{r.name, from, end})
		}
	}
	return out
}

// assertNoOverlap: no two replicas ever held one infrastructure at once.
func assertNoOverlap(t *testing.T, rs []*replica) {
	t.Helper()
	for id, spans := range intervals(t, rs) {
		slices.SortFunc(spans, func(a, b interval) int { return a.from.Compare(b.from) })
		for i := 1; i < len(spans); i++ {
			if spans[i].from.Before(spans[i-1].to) {
				t.Errorf("infrastructure %s: %s acted from %s while %s did until %s", id,
					spans[i].replica, spans[i].from.Format(time.StampMicro), spans[i-1].replica, spans[i-1].to.Format(time.StampMicro))
			}
		}
	}
}

// backendProcesses counts, per infrastructure, the processes the local
// backend runs for it: its own view (/proc), not the store's.
func backendProcesses(t *testing.T, ids []string) map[string]int {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("OCCOPUS_INFRA_ID=")); ok && want[string(v)] {
				out[string(v)]++
			}
		}
	}
	return out
}

// killInfraProcesses ends every process of the test's infrastructures
// (the clean-up of a test that failed half way).
func killInfraProcesses(ids []string) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("OCCOPUS_INFRA_ID=")); ok && want[string(v)] {
				syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // may be gone
			}
		}
	}
}

// within polls cond every 100 ms for at most d (a generous bound: the
// figures that matter are read from the logs).
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHA(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the HA test starts etcd and three services")
	}
	cluster := etcdtest.Start(t, 3)
	bin := occBinary(t, t.TempDir())
	// One home for the three, as on one host: the local backend keeps its
	// records under it, so whichever replica owns an instance finds them.
	home := t.TempDir()
	prefix := "hatest/" + uuid.NewString() + "/"
	cfgFor := func(endpoints []string) string {
		f := filepath.Join(t.TempDir(), "occopus_config.yaml")
		cfg := fmt.Sprintf("components:\n  uds: {protocol: etcd, prefix: %q, endpoints: [%s]}\nha: {lease_ttl: %s}\n",
			prefix, strings.Join(endpoints, ", "), haTTL)
		if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	nodes := filepath.Join(home, "nodes.yaml")
	if err := os.WriteFile(nodes, []byte(haNodeDefs), 0o600); err != nil {
		t.Fatal(err)
	}
	occSub(t, bin, home, "--cfg", cfgFor(cluster.Endpoints()), "import", nodes)

	st, err := etcd.Open(t.Context(), etcd.Options{Endpoints: cluster.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	re := regexp.MustCompile(`occopus REST service on (http://127\.0\.0\.1:\d+)`)
	var rs []*replica
	for i := range 3 {
		r := &replica{name: fmt.Sprintf("r%d", i)}
		var eps []string
		for _, m := range cluster.Members {
			p := newProxy(t, strings.TrimPrefix(m.ClientURL, "http://"))
			r.proxies = append(r.proxies, p)
			eps = append(eps, p.url())
		}
		r.proc = startOcc(t, bin, home, "--cfg", cfgFor(eps), "rest-service", "--port", "0", "--interval", "0.5")
		r.proc.waitFor(t, re, 60*time.Second)
		r.url = re.FindStringSubmatch(r.proc.errText())[1]
		rs = append(rs, r)
	}
	var ids []string
	t.Cleanup(func() { killInfraProcesses(ids) })
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range rs {
				t.Logf("%s log:\n%s", r.name, tail(r.proc.errText(), 4000))
			}
		}
	})

	// Ten infrastructures through r0.
	for i := range 10 {
		desc := fmt.Sprintf("infra_name: ha%d\nnodes:\n  - {name: s, type: ha_sleeper}\n", i)
		resp, err := http.Post(rs[0].url+"/infrastructures/", "application/yaml", strings.NewReader(desc))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			InfraID string `json:"infraid"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || out.InfraID == "" {
			t.Fatalf("POST: %d %v %+v", resp.StatusCode, err, out)
		}
		ids = append(ids, out.InfraID)
	}
	ready := func() bool {
		for _, id := range ids {
			ins, err := st.Instances(t.Context(), id)
			if err != nil || len(ins) != 1 || ins[0].State != store.StateReady {
				return false
			}
		}
		return true
	}
	within(t, 60*time.Second, "ten infrastructures ready", ready)
	onePerInfra := func(when string) {
		t.Helper()
		got := backendProcesses(t, ids)
		for _, id := range ids {
			if got[id] != 1 {
				t.Errorf("%s: infrastructure %s has %d backend processes, want 1", when, id, got[id])
			}
		}
	}
	onePerInfra("built")

	// Who owns what.
	owners := func(live []*replica) map[string]string {
		m := map[string]string{}
		for _, r := range live {
			o, err := r.health(t)
			if err != nil {
				continue
			}
			for _, id := range o.Owned {
				m[id] = r.name
			}
		}
		return m
	}
	within(t, 30*time.Second, "every infrastructure owned", func() bool { return len(owners(rs)) == 10 })
	count := map[string]int{}
	for _, r := range owners(rs) {
		count[r]++
	}
	victim := rs[0]
	for _, r := range rs {
		if count[r.name] > count[victim.name] {
			victim = r
		}
	}
	var live []*replica
	for _, r := range rs {
		if r != victim {
			live = append(live, r)
		}
	}
	t.Logf("owners before the kill: %v; killing %s", count, victim.name)

	// kill -9 the owner of the most.
	victim.killed = time.Now()
	if err := victim.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	victim.proc.wait() //nolint:errcheck // killed
	within(t, haTTL+30*time.Second, "every infrastructure owned by the survivors", func() bool { return len(owners(live)) == 10 })
	// Maintained again: a pass of each ends after its takeover.
	within(t, 30*time.Second, "a pass of every infrastructure after the kill", func() bool {
		infras, err := st.Infras(t.Context())
		if err != nil {
			return false
		}
		n := 0
		for _, in := range infras {
			if slices.Contains(ids, in.ID) && in.LastPass.At.After(victim.killed) && in.LastPass.Result == store.PassOK {
				n++
			}
		}
		return n == 10
	})
	// The takeover took the ttl and a scan, not more: read from the
	// survivors' logs (when each began to own what the victim had).
	var lastTake time.Time
	for _, r := range live {
		for _, l := range ownershipLog(t, r.proc.errText()) {
			if l.msg == "owning" && l.at.After(victim.killed) && l.at.After(lastTake) {
				lastTake = l.at
			}
		}
	}
	t.Logf("failover: the last infrastructure was taken over %v after the kill", lastTake.Sub(victim.killed).Round(time.Millisecond))
	if d := lastTake.Sub(victim.killed); d > haTTL+haTTL/5+2*time.Second {
		t.Errorf("takeover %v after the kill, want within the ttl %v and a scan", d, haTTL)
	}
	onePerInfra("after the failover")
	assertNoOverlap(t, rs)

	// One etcd member of three killed: nothing changes.
	snapshot := func() (map[string]string, int64) {
		var losses int64
		for _, r := range live {
			o, err := r.health(t)
			if err != nil {
				t.Fatalf("%s healthz: %v", r.name, err)
			}
			losses += o.LeaseLosses
		}
		return owners(live), losses
	}
	ownBefore, lossBefore := snapshot()
	cluster.Members[0].Kill()
	memberKilled := time.Now()
	// Two ttls: every lease was renewed several times through the others.
	time.Sleep(2 * haTTL)
	ownAfter, lossAfter := snapshot()
	if lossAfter != lossBefore {
		t.Errorf("killing one etcd member of three lost %d leases", lossAfter-lossBefore)
	}
	for id, r := range ownBefore {
		if ownAfter[id] != r {
			t.Errorf("infrastructure %s moved from %s to %q after an etcd member died", id, r, ownAfter[id])
		}
	}
	infras, err := st.Infras(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infras {
		if slices.Contains(ids, in.ID) && (!in.LastPass.At.After(memberKilled) || in.LastPass.Result != store.PassOK) {
			t.Errorf("infrastructure %s: last pass %+v, want an ok one since the member died", in.ID, in.LastPass)
		}
	}

	// Cut off from etcd: the replica owning the most stops within the ttl.
	cutCount := map[string]int{}
	for _, r := range ownAfter {
		cutCount[r]++
	}
	cut, other := live[0], live[1]
	if cutCount[live[1].name] > cutCount[live[0].name] {
		cut, other = live[1], live[0]
	}
	had := map[string]bool{}
	for id, r := range ownAfter {
		if r == cut.name {
			had[id] = true
		}
	}
	for _, p := range cut.proxies {
		p.blackhole()
	}
	cut.killed = time.Now()
	within(t, 2*haTTL+10*time.Second, "the cut-off replica stops", func() bool {
		stopped := map[string]bool{}
		for _, l := range ownershipLog(t, cut.proc.errText()) {
			if l.msg == "stopped" && l.lost && l.at.After(cut.killed) {
				stopped[l.infra] = true
			}
		}
		for id := range had {
			if !stopped[id] {
				return false
			}
		}
		return true
	})
	for _, l := range ownershipLog(t, cut.proc.errText()) {
		if l.msg == "stopped" && l.at.After(cut.killed) && l.at.Sub(cut.killed) > haTTL {
			t.Errorf("%s stopped acting on %s %v after it was cut off, more than the ttl %v", cut.name, l.infra, l.at.Sub(cut.killed), haTTL)
		}
	}
	// Its spans end when it said it stopped.
	cut.killed = time.Time{}
	within(t, haTTL+30*time.Second, "the other replica owns every infrastructure", func() bool {
		return len(owners([]*replica{other})) == 10
	})
	onePerInfra("after the partition")
	assertNoOverlap(t, rs)

	// Destroy them all through the survivor.
	for _, id := range ids {
		req, _ := http.NewRequest("DELETE", other.url+"/infrastructures/"+id, nil)
		c := http.Client{Timeout: 2 * time.Minute}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("DELETE %s: %d", id, resp.StatusCode)
		}
	}
	if got := backendProcesses(t, ids); len(got) != 0 {
		t.Errorf("backend processes left after the deletes: %v", got)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
