package cloudtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gochef "github.com/go-chef/chef"
	"go.yaml.in/yaml/v3"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/configmgr/chef/cheffake"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/ec2"
	"github.com/occopus-go/occopus/resource/ec2/ec2fake"
	"github.com/occopus-go/occopus/store"
)

// The chef-apache2 tutorial is built with its own files against the fake
// EC2 and the fake Chef Infra Server. Replaced in memory, besides the EC2
// values of ec2-ping (endpoint, regionname, image_id):
//
//	config_management.endpoint → the Chef fake's organization URL
//
// The cloud-init's server_url and validation key stay placeholders: no
// chef-client runs; the Chef fake plays its part (it converges a node
// when the test lets it).

// replaceSectionPlaceholders is replacePlaceholders for another section
// of every implementation.
func replaceSectionPlaceholders(t *testing.T, defs *descr.NodeDefs, section string, set map[string]any) {
	t.Helper()
	for _, typ := range defs.Types {
		for _, im := range defs.Impls[typ] {
			sec := im.Section(section)
			for k, v := range set {
				if !placeholder(sec[k]) {
					t.Fatalf("%s: %s.%s is %v in the tutorial, not a placeholder", im.Path(), section, k, sec[k])
				}
				sec[k] = v
			}
		}
	}
}

// sorted returns its arguments sorted, never nil.
func sorted(s ...string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

// syncBuffer is a log sink safe for the Manager's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// chefWorld is the chef-apache2 tutorial against the fakes.
type chefWorld struct {
	ec2    *ec2fake.Server
	chef   *cheffake.Server
	defs   *descr.NodeDefs
	infra  *descr.Infra
	m      *occopus.Manager
	logs   *syncBuffer
	keyPEM string

	mu     sync.Mutex
	events []store.Event
}

// newChefWorld sets up the fakes, the tutorial and a Manager whose
// auth_data names the Chef client "ci-chef-client" with signKey (its real key
// when "") read with !text_import, as users write it.
func newChefWorld(t *testing.T, signKey string) *chefWorld {
	t.Helper()
	dir := tutorial(t, "chef-apache2")
	w := &chefWorld{ec2: ec2fake.New(ec2fake.Options{}), chef: cheffake.New(cheffake.Options{ConvergeAfter: -1}), logs: &syncBuffer{}}
	t.Cleanup(w.ec2.Close)
	t.Cleanup(w.chef.Close)
	w.keyPEM = w.chef.NewClient("ci-chef-client")
	if signKey == "" {
		signKey = w.keyPEM
	}
	var err error
	w.defs, err = descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replacePlaceholders(t, w.defs, map[string]any{"endpoint": w.ec2.URL(), "regionname": w.ec2.Region(), "image_id": "ami-0123456789abcdef0"})
	replaceSectionPlaceholders(t, w.defs, "config_management", map[string]any{"endpoint": w.chef.URL()})
	w.infra, err = descr.LoadInfra(filepath.Join(dir, "infra-chef-apache2.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "occopus.pem")
	if err := os.WriteFile(keyFile, []byte(signKey), 0o600); err != nil {
		t.Fatal(err)
	}
	authData := fmt.Sprintf(`resource:
  - type: ec2
    endpoint: %s
    auth_data:
      accesskey: %s
      secretkey: fake-secret-key-0123456789
config_management:
  - type: chef
    endpoint: %s
    auth_data:
      client_name: ci-chef-client
      client_key: !text_import
        url: file://%s
`, w.ec2.URL(), w.ec2.AccessKey(), w.chef.URL(), keyFile)
	w.m = newManagerWith(t, authData, occopus.Options{PollFirst: 10 * time.Millisecond, PollMax: 50 * time.Millisecond,
		CreateTimeout: time.Minute, Log: slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	w.m.Subscribe(occopus.Observer{Event: func(ev occopus.Event) { w.mu.Lock(); w.events = append(w.events, ev); w.mu.Unlock() }})
	if err := w.m.ImportNodeDefs(t.Context(), w.defs); err != nil {
		t.Fatal(err)
	}
	return w
}

// noKey fails the test when any line of a key appears in text.
func noKey(t *testing.T, what, text string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for line := range strings.Lines(k) {
			if l := strings.TrimSpace(line); len(l) > 16 && !strings.HasPrefix(l, "-----") && strings.Contains(text, l) {
				t.Errorf("%s quotes the client key (%q)", what, l)
				return
			}
		}
	}
}

func (w *chefWorld) eventText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, ev := range w.events {
		fmt.Fprintf(&b, "%s %s %s %s->%s %s\n", ev.Kind, ev.NodeName, ev.NodeID, ev.From, ev.To, ev.Message)
	}
	return b.String()
}

// chefSection is the chef: mapping of a cloud-init user data.
func chefSection(t *testing.T, userData string) map[string]any {
	t.Helper()
	var doc struct {
		Chef map[string]any `yaml:"chef"`
	}
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		t.Fatalf("user data is not YAML: %v\n%s", err, userData)
	}
	return doc.Chef
}

// TestTutorialChefApache2 builds the tutorial: the environment, role and
// node exist at the Chef server with the right names, run list and
// environment before the VM boots; the build waits for the converge;
// a second pass writes nothing; destroy leaves nothing behind, also what
// a crash left unrecorded.
func TestTutorialChefApache2(t *testing.T) {
	w := newChefWorld(t, "")
	w.chef.SetFreeze(true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	id, err := w.m.Submit(ctx, w.infra, "")
	if err != nil {
		t.Fatal(err)
	}
	var res *occopus.BuildResult
	var buildErr error
	finished := make(chan struct{})
	go func() { defer close(finished); res, buildErr = w.m.Build(ctx, w.infra, id) }()
	t.Cleanup(func() { cancel(); <-finished })

	// The instance waits for its converge, and says so.
	var inst store.Instance
	for deadline := time.Now().Add(30 * time.Second); ; {
		ins, err := w.m.Instances(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) == 1 && ins[0].State == store.StatePending && strings.HasPrefix(ins[0].Error, "waiting for the config manager: ") {
			inst = ins[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance never waited for its converge: %+v\nevents:\n%s", ins, w.eventText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(inst.Error, "node "+inst.NodeID+" at chef server "+w.chef.URL()+" has not converged yet") {
		t.Errorf("pending message %q does not say the node has not converged", inst.Error)
	}
	role := id + "_apache2"
	if got := w.chef.Names("environments"); !reflect.DeepEqual(got, sorted(id, "_default")) {
		t.Errorf("environments %v, want the infra id's", got)
	}
	if got := w.chef.Names("roles"); !reflect.DeepEqual(got, []string{role}) {
		t.Errorf("roles %v, want %s", got, role)
	}
	n, ok := w.chef.Nodes()[inst.NodeID]
	if !ok {
		t.Fatalf("no node %s at the Chef server: %v", inst.NodeID, w.chef.Names("nodes"))
	}
	if want := []string{"role[" + role + "]", "recipe[connect]", "recipe[apache2]"}; n.Environment != id || !reflect.DeepEqual(n.RunList, want) {
		t.Errorf("node: environment %q run_list %v; want %s and %v", n.Environment, n.RunList, id, want)
	}
	if !reflect.DeepEqual(n.Normal, map[string]any{"connections": []any{}}) {
		t.Errorf("normal attributes %v, want only the (empty) connections", n.Normal)
	}
	// The VM side: its cloud-init names the same environment and node.
	vms := w.ec2.Instances()
	if len(vms) != 1 {
		t.Fatalf("%d VMs at the EC2 fake, want 1", len(vms))
	}
	if vms[0].Tags[ec2.TagNodeID] != inst.NodeID {
		t.Errorf("VM tagged node id %q, want %s", vms[0].Tags[ec2.TagNodeID], inst.NodeID)
	}
	cs := chefSection(t, vms[0].UserData)
	if cs["environment"] != id || cs["node_name"] != inst.NodeID {
		t.Errorf("cloud-init chef: environment %v node_name %v; want %s and %s", cs["environment"], cs["node_name"], id, inst.NodeID)
	}

	w.chef.SetFreeze(false)
	<-finished
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	if len(res.Created) != 1 || res.Created[0] != inst.NodeID {
		t.Errorf("created %v, want %s", res.Created, inst.NodeID)
	}
	rep, err := w.m.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ir := rep["apache2"].Instances[inst.NodeID]; ir.State != "ready" {
		t.Errorf("apache2 %s is %q, want ready", inst.NodeID, ir.State)
	}
	if ev := w.eventText(); !strings.Contains(ev, "instance.waiting apache2 "+inst.NodeID+" pending->pending waiting for the config manager: ") {
		t.Errorf("no event says the instance waited for its config manager:\n%s", ev)
	}

	// Maintaining the built infrastructure changes nothing at the server.
	writes := w.chef.WritesOf()
	if _, err := w.m.Maintain(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := w.chef.WritesOf(); !reflect.DeepEqual(got, writes) {
		t.Errorf("maintain wrote to the Chef server: before %v, after %v", writes, got)
	}
	if want := map[string]int{"POST environments": 1, "POST roles": 1, "POST nodes": 1}; !reflect.DeepEqual(writes, want) {
		t.Errorf("the build wrote %v, want %v", writes, want)
	}
	if n := w.ec2.Created(); n != 1 {
		t.Errorf("the EC2 fake made %d VMs, want 1", n)
	}

	// What a crash could leave: a node registered but never recorded,
	// another role of the infrastructure. Destroy finds them by name.
	knife := w.chef.NewClient("knife")
	c, err := gochef.NewClient(&gochef.Config{Name: "knife", Key: knife, BaseURL: w.chef.URL() + "/", AuthenticationVersion: "1.3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes.Post(gochef.Node{Name: "leftover", Environment: id, RunList: []string{"role[" + id + "_ghost]"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Roles.Create(&gochef.Role{Name: id + "_ghost", RunList: gochef.RunList{}}); err != nil {
		t.Fatal(err)
	}
	w.chef.Nodes() // the fake's chef-client registers leftover's client
	trep, err := w.m.TearDown(ctx, id)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if len(trep.Instances) != 1 || len(trep.Orphans) != 0 {
		t.Errorf("teardown removed %v and %d orphans, want the instance", trep.Instances, len(trep.Orphans))
	}
	for kind, want := range map[string][]string{"nodes": {}, "roles": {}, "environments": {"_default"}, "clients": {"ci-chef-client", "knife"}} {
		if got := w.chef.Names(kind); !reflect.DeepEqual(sorted(got...), want) {
			t.Errorf("%s left at the Chef server: %v, want %v", kind, got, want)
		}
	}
	if n := w.ec2.Live(); n != 0 {
		t.Errorf("%d VMs left at the EC2 fake", n)
	}
	for _, e := range w.ec2.Errors() {
		t.Error(e)
	}
	noKey(t, "the log", w.logs.String(), w.keyPEM)
	noKey(t, "the events", w.eventText(), w.keyPEM)
}

// TestChefRefusesKey: a key the server does not know fails the build
// before any VM is made, with an error naming the node, the server and
// Chef's message, and the key nowhere.
func TestChefRefusesKey(t *testing.T) {
	_, wrong := cheffake.GenerateKey()
	w := newChefWorld(t, wrong)
	res, err := w.m.Build(t.Context(), w.infra, "")
	if err == nil {
		t.Fatal("build succeeded with a key the Chef server does not know")
	}
	if res == nil || res.ID == "" {
		t.Fatalf("result %+v", res)
	}
	t.Logf("build error: %v", err)
	// The registration's first call is refused (the environment's read,
	// done for the infrastructure: the error names the node around it),
	// and so are the clean-up's: the rollback says what is left to do.
	for _, want := range []string{"node apache2: node_def:ec2_chef_apache2_node[0]: chef: read environment " + res.ID, w.chef.URL(),
		// The client's name is a value of auth_data: removed like the key.
		"Invalid signature for user or client '[REDACTED]'", "HTTP 401", "for node apache2 (", "rollback incomplete"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := w.ec2.Created(); n != 0 {
		t.Errorf("%d VMs made although the Chef server refused the node", n)
	}
	if got := w.chef.Names("environments"); !reflect.DeepEqual(got, []string{"_default"}) {
		t.Errorf("environments %v", got)
	}
	noKey(t, "the error", err.Error(), wrong, w.keyPEM)
	noKey(t, "the log", w.logs.String(), wrong, w.keyPEM)
	noKey(t, "the events", w.eventText(), wrong, w.keyPEM)
}

// TestTutorialChefApache2Render: what `occopus render` makes of the
// tutorial's cloud-init holds the real infra id and node id where the
// chef: module reads them.
func TestTutorialChefApache2Render(t *testing.T) {
	w := newChefWorld(t, "")
	const infraID, nodeID = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-000000000001"
	r, err := w.m.Render(t.Context(), occopus.RenderRequest{Infra: w.infra, NodeDefs: []*descr.NodeDefs{w.defs}, InfraID: infraID,
		NodeIDs: map[string]string{"apache2": nodeID}})
	if err != nil {
		t.Fatal(err)
	}
	impls := r.Nodes["apache2"].Implementations
	if len(impls) != 1 {
		t.Fatalf("%d implementations rendered", len(impls))
	}
	ctxText, _ := impls[0].Contextualisation["context"].(string)
	cs := chefSection(t, ctxText)
	if cs["environment"] != infraID || cs["node_name"] != nodeID {
		t.Errorf("cloud-init chef: environment %v node_name %v; want %s and %s:\n%s", cs["environment"], cs["node_name"], infraID, nodeID, ctxText)
	}
	if cm := impls[0].ConfigManagement; cm["endpoint"] != w.chef.URL() || !reflect.DeepEqual(cm["run_list"], []any{"recipe[apache2]"}) {
		t.Errorf("config_management rendered as %v", cm)
	}
	if w.chef.Requests() != 0 {
		t.Errorf("render sent %d requests to the Chef server", w.chef.Requests())
	}
}
