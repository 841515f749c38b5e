package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"

	_ "github.com/occopus-go/occopus/contextualise/cloudinit"
)

// fakeCM is a config manager registered like a real plugin, as type
// "fakecm", for engine tests: it records every lifecycle call, holds
// nodes unconverged until told, and can be told to refuse registrations.
type fakeCM struct {
	mu        sync.Mutex
	calls     []string // "prepare INFRA@SERVER", "register NODEID", "drop NODEID@SERVER", "dropinfra INFRA@SERVER"
	nodes     map[string]configmgr.Node
	converged map[string]bool
	hold      bool
	refuse    string // Register fails for node names equal to it
	// vmAtRegister records, per node id, whether its VM existed when it
	// was registered.
	vmAtRegister map[string]bool
}

var cms = &fakeCM{}

func (f *fakeCM) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.hold, f.refuse = nil, false, ""
	f.nodes, f.converged, f.vmAtRegister = map[string]configmgr.Node{}, map[string]bool{}, map[string]bool{}
}

func (f *fakeCM) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeCM) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCM) setHold(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = on
}

type fakeCMSettings struct {
	Server  string   `occopus:"server,required"`
	RunList []string `occopus:"run_list"`
}

func init() {
	configmgr.Register(configmgr.Plugin{Type: "fakecm", Schema: descr.SchemaOf[fakeCMSettings](),
		Resolve: func(path string, section map[string]any, r configmgr.Renderer) (map[string]any, map[string]any, error) {
			out, err := configmgr.RenderSection(path, section, r)
			return out, nil, err
		},
		New: func(cfg configmgr.Config) (configmgr.Manager, error) {
			var s fakeCMSettings
			if err := descr.Decode("config_management", cfg.Section, &s); err != nil {
				return nil, err
			}
			return &fakeCMManager{server: s.Server}, nil
		}})
}

type fakeCMManager struct{ server string }

func (m *fakeCMManager) String() string { return "fakecm " + m.server }

func (m *fakeCMManager) PrepareInfra(ctx context.Context, infraID string) error {
	cms.record("prepare " + infraID + "@" + m.server)
	return nil
}

func (m *fakeCMManager) Register(ctx context.Context, n configmgr.Node) error {
	cloud.mu.Lock()
	vm := false
	for _, in := range cloud.instances {
		vm = vm || in.node == n.NodeID
	}
	cloud.mu.Unlock()
	cms.mu.Lock()
	defer cms.mu.Unlock()
	if n.Name == cms.refuse {
		return fmt.Errorf("fakecm %s: 401 Invalid signature for node %s", m.server, n.Name)
	}
	cms.calls = append(cms.calls, "register "+n.NodeID)
	cms.nodes[n.NodeID] = n
	cms.vmAtRegister[n.NodeID] = vm
	return nil
}

func (m *fakeCMManager) Converged(ctx context.Context, n configmgr.Ref) (configmgr.Status, error) {
	nodeID := n.NodeID
	cms.mu.Lock()
	defer cms.mu.Unlock()
	if _, ok := cms.nodes[nodeID]; !ok {
		return configmgr.Status{Detail: "fakecm " + m.server + " has no node " + nodeID}, nil
	}
	if cms.hold && !cms.converged[nodeID] {
		return configmgr.Status{Detail: "fakecm " + m.server + ": node " + nodeID + " has not converged"}, nil
	}
	cms.converged[nodeID] = true
	return configmgr.Status{Converged: true}, nil
}

func (m *fakeCMManager) DropNode(ctx context.Context, n configmgr.Ref) error {
	cms.record("drop " + n.NodeID + "@" + m.server)
	cms.mu.Lock()
	defer cms.mu.Unlock()
	delete(cms.nodes, n.NodeID)
	return nil
}

func (m *fakeCMManager) DropInfra(ctx context.Context, infraID string) error {
	cms.record("dropinfra " + infraID + "@" + m.server)
	return nil
}

var (
	_ configmgr.InfraPreparer = (*fakeCMManager)(nil)
	_ configmgr.Registrar     = (*fakeCMManager)(nil)
	_ configmgr.Reporter      = (*fakeCMManager)(nil)
	_ configmgr.NodeDropper   = (*fakeCMManager)(nil)
	_ configmgr.InfraDropper  = (*fakeCMManager)(nil)
)

const cmDefs = `
'node_def:db':
  - resource: {type: fake, zone: a}
    config_management: {type: fakecm, server: s1, run_list: ["recipe[db]"]}
    health_check: {ping: false}
'node_def:web':
  - resource: {type: fake, zone: a}
    contextualisation:
      type: cloudinit
      context_template: "#cloud-config\nnode: {{ node_id }}\n"
      attributes:
        from_def: kept
        both: from the definition
        named: "{{ name }}"
    config_management: {type: fakecm, server: "s{{ 1 + 1 }}", run_list: ["recipe[web]"]}
    health_check: {ping: false}
`

const cmInfra = `
infra_name: cm
nodes:
  - &D {name: db, type: db}
  - &W
    name: web
    type: web
    attributes:
      both: from the description
      where: "{{ infra_id }}"
      wordpress.db.name: wp
dependencies:
  - connection: [*W, *D]
    mappings:
      - attributes: [fqdn, wordpress.db.host]
`

func instanceOf(t *testing.T, w *world, id, name string) store.Instance {
	t.Helper()
	ins, err := w.st.Instances(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.NodeName == name {
			return in
		}
	}
	return store.Instance{}
}

// TestConfigManagerLifecycle: the infrastructure is prepared once per
// server, each node registered before its VM with its merged attributes
// and mappings, the instance is pending (saying so) until the manager
// says it converged, and destroy drops the nodes and then the
// infrastructure.
func TestConfigManagerLifecycle(t *testing.T) {
	cms.reset()
	cms.setHold(true)
	var mu sync.Mutex
	var events []store.Event
	w := newWorld(t, Options{OnEvent: func(ev store.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }})
	w.importDefs(cmDefs)
	id := w.submit(cmInfra)
	ctx, cancel := context.WithCancel(t.Context())
	var buildErr error
	finished := make(chan struct{})
	go func() { defer close(finished); _, buildErr = w.eng.Build(ctx, id, BuildOptions{}) }()
	// A failed test stops the build before the world is destroyed.
	t.Cleanup(func() { cancel(); <-finished })

	// db waits for its converge: pending, saying for what.
	deadline := time.Now().Add(10 * time.Second)
	var db store.Instance
	for {
		db = instanceOf(t, w, id, "db")
		if db.State == store.StatePending && strings.HasPrefix(db.Error, "waiting for the config manager: fakecm s1: node") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("db never waited for its config manager: %+v", db)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cms.setHold(false)
	<-finished
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	web := instanceOf(t, w, id, "web")
	if db.State = instanceOf(t, w, id, "db").State; db.State != store.StateReady || web.State != store.StateReady {
		t.Fatalf("states db %s web %s, want ready", db.State, web.State)
	}
	want := []string{"prepare " + id + "@s1", "register " + db.NodeID, "prepare " + id + "@s2", "register " + web.NodeID}
	if got := cms.log(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n%q\nwant\n%q", got, want)
	}
	cms.mu.Lock()
	n := cms.nodes[web.NodeID]
	vm := cms.vmAtRegister[web.NodeID] || cms.vmAtRegister[db.NodeID]
	cms.mu.Unlock()
	if vm {
		t.Error("a node was registered after its VM was made")
	}
	wantAttrs := map[string]any{"from_def": "kept", "both": "from the description", "named": "web", "where": id, "wordpress.db.name": "wp"}
	if !reflect.DeepEqual(n.Attributes, wantAttrs) {
		t.Errorf("attributes %v, want %v", n.Attributes, wantAttrs)
	}
	if m := n.Inbound["db"]; len(m) != 1 || m[0].Attributes != [2]string{"fqdn", "wordpress.db.host"} {
		t.Errorf("inbound mappings %v", n.Inbound)
	}
	if n.InfraID != id || n.Name != "web" || n.Section["server"] != "s2" || !reflect.DeepEqual(n.Section["run_list"], []any{"recipe[web]"}) {
		t.Errorf("registered %+v", n)
	}
	mu.Lock()
	var waiting []string
	for _, ev := range events {
		if ev.Kind == "instance.waiting" && ev.NodeID == db.NodeID {
			waiting = append(waiting, ev.Message)
		}
	}
	mu.Unlock()
	if !slices.ContainsFunc(waiting, func(s string) bool { return strings.HasPrefix(s, "waiting for the config manager: ") }) {
		t.Errorf("no event says db waits for its config manager: %q", waiting)
	}

	// A pass over the built infrastructure registers nothing again.
	if _, err := w.eng.Reconcile(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if got := cms.log(); len(got) != len(want) {
		t.Errorf("a second pass called the config manager: %q", got[len(want):])
	}

	if _, err := w.eng.Destroy(t.Context(), id, false); err != nil {
		t.Fatal(err)
	}
	got := cms.log()[len(want):]
	slices.Sort(got)
	wantDrops := []string{"drop " + db.NodeID + "@s1", "drop " + web.NodeID + "@s2", "dropinfra " + id + "@s1", "dropinfra " + id + "@s2"}
	slices.Sort(wantDrops)
	if !reflect.DeepEqual(got, wantDrops) {
		t.Errorf("destroy called\n%q\nwant\n%q", got, wantDrops)
	}
}

// TestConfigManagerTimeout: a node that never converges fails at the
// create timeout, and the failure says the config manager is what is
// missing.
func TestConfigManagerTimeout(t *testing.T) {
	cms.reset()
	cms.setHold(true)
	w := newWorld(t, Options{CreateTimeout: 100 * time.Millisecond})
	w.importDefs(cmDefs)
	id := w.submit("infra_name: one\nnodes:\n  - {name: db, type: db}\n")
	_, err := w.eng.Build(t.Context(), id, BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "not ready within 100ms: fakecm s1: node") || !strings.Contains(err.Error(), "has not converged") {
		t.Fatalf("build: %v, want a timeout naming the config manager", err)
	}
}

// TestConfigManagerRefuses: a refused registration fails the creation
// before any VM is made, names the node and the manager's message, and
// drops what was registered.
func TestConfigManagerRefuses(t *testing.T) {
	cms.reset()
	cms.refuse = "db"
	w := newWorld(t, Options{})
	w.importDefs(cmDefs)
	id := w.submit("infra_name: one\nnodes:\n  - {name: db, type: db}\n")
	before := cloud.creates
	_, err := w.eng.Build(t.Context(), id, BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "node db") || !strings.Contains(err.Error(), "fakecm s1: 401 Invalid signature") {
		t.Fatalf("build: %v", err)
	}
	if cloud.creates != before {
		t.Errorf("%d VMs made for a node its config manager refused", cloud.creates-before)
	}
	if got := cms.log(); len(got) != 2 || !strings.HasPrefix(got[1], "drop ") {
		t.Errorf("calls %q, want prepare then the drop of the failed creation", got)
	}
}

// TestConfigManagerRemovedNode: an instance of a node no longer described
// is dropped at the config managers the description still uses.
func TestConfigManagerRemovedNode(t *testing.T) {
	cms.reset()
	w := newWorld(t, Options{})
	w.importDefs(cmDefs)
	id := w.submit("infra_name: two\nnodes:\n  - {name: db, type: db}\n  - {name: old, type: web}\n")
	if _, err := w.eng.Build(t.Context(), id, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	old := instanceOf(t, w, id, "old")
	if err := w.eng.Update(t.Context(), id, w.infra("infra_name: two\nnodes:\n  - {name: db, type: db}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Reconcile(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if got := cms.log(); !slices.Contains(got, "drop "+old.NodeID+"@s1") {
		t.Errorf("calls %q: the removed node's instance was not dropped at s1", got)
	}
}

// TestWaitingFor: what a pending message says it waits for.
func TestWaitingFor(t *testing.T) {
	var w waits
	w.add("the health checks", "health checks failing: ping: no reply")
	w.add("the config manager", "chef server x: node y has not converged")
	if got, want := w.pending(), "waiting for the health checks and the config manager: health checks failing: ping: no reply; chef server x: node y has not converged"; got != want {
		t.Errorf("pending() = %q\nwant %q", got, want)
	}
	if got := waitingFor(w.pending()); got != "waiting for the health checks and the config manager" {
		t.Errorf("waitingFor = %q", got)
	}
	if got := waitingFor("gone at the backend"); got != "" {
		t.Errorf("waitingFor of another message = %q", got)
	}
	if w.empty() || !(waits{}).empty() {
		t.Error("empty() is wrong")
	}
}
