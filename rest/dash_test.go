package rest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// dashDefs: a listener whose health check is a TCP port on the instance's
// own loopback address, and a plain process; the listener's resource
// names an auth_data entry by a value that is a secret of the service.
const dashDefs = `
'node_def:dash_listener':
  - resource:
      type: local
      stop_timeout: 1
      name: hush-hush-name
    contextualisation:
      type: docker
      command: ["python3", "-c", "import os,socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((os.environ['OCCOPUS_IP'],8080));s.listen()\nwhile True: s.accept()[0].close()"]
    health_check:
      ping: false
      ports: [8080]
'node_def:dash_plain':
  - resource:
      type: local
      stop_timeout: 1
    contextualisation:
      type: docker
      command: ["sleep", "3600"]
    health_check:
      ping: false
`

const dashInfra = `infra_name: dash-graph
nodes:
  - &DB
    name: db
    type: dash_listener
  - &WEB
    name: web
    type: dash_plain
    scaling: {min: 1, max: 3}
dependencies:
  - [ *WEB, *DB ]
`

type detail struct {
	InfraID  string     `json:"infraid"`
	Name     string     `json:"name"`
	Attached bool       `json:"attached"`
	Levels   [][]string `json:"levels"`
	Nodes    []struct {
		Name      string   `json:"name"`
		Level     int      `json:"level"`
		DependsOn []string `json:"depends_on"`
		Scaling   struct{ Target, Min, Max int }
		Health    []struct{ Primitive, Status, Output string }
	} `json:"nodes"`
	Members []struct {
		Node, State, Address, Backend string
		NodeID                        string `json:"node_id"`
		Since                         time.Time
		Impl                          int
		Resource                      map[string]any
	} `json:"members"`
	LastPass *struct{ Result, Error string } `json:"last_pass"`
}

func getDetail(t *testing.T, base, id string) detail {
	t.Helper()
	r := call(t, "GET", base+"/infrastructures/"+id+"/detail", "")
	expect(t, r, 200)
	var d detail
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDetailAndOverview: the detail view has the graph (levels and
// edges), every instance with its backend, implementation, time in state
// and rendered resource (the secret redacted), and the health-check
// results of the checked node; the overview lists every infrastructure
// with its name. Unknown ids are 404.
func TestDetailAndOverview(t *testing.T) {
	f := newFixture(t)
	importDefs(t, f.st, dashDefs)
	_, hs := f.server(t, func(c *serverConfig) { c.Secrets = []string{"hush-hush-name"} })
	id := create(t, hs.URL, dashInfra)
	other := create(t, hs.URL, infraYAML)
	waitFor(t, hs.URL, id, "both nodes ready", func(r report) bool { return r.ready("db") == 1 && r.ready("web") == 1 })
	r := call(t, "GET", hs.URL+"/infrastructures/"+id+"/detail", "")
	if strings.Contains(string(r.body), "hush-hush-name") {
		t.Fatalf("the secret is in the detail: %s", r.body)
	}
	d := getDetail(t, hs.URL, id)
	if d.Name != "dash-graph" || len(d.Levels) != 2 || d.Levels[0][0] != "db" || d.Levels[1][0] != "web" {
		t.Errorf("levels %v of %q", d.Levels, d.Name)
	}
	byName := map[string]int{}
	for i, n := range d.Nodes {
		byName[n.Name] = i
	}
	web, db := d.Nodes[byName["web"]], d.Nodes[byName["db"]]
	if len(web.DependsOn) != 1 || web.DependsOn[0] != "db" || web.Level != 1 || web.Scaling.Max != 3 || len(db.DependsOn) != 0 {
		t.Errorf("nodes %+v", d.Nodes)
	}
	if len(db.Health) != 1 || db.Health[0].Primitive != "ports" || db.Health[0].Status != "pass" {
		t.Errorf("db health %+v", db.Health)
	}
	if len(d.Members) != 2 {
		t.Fatalf("members %+v", d.Members)
	}
	for _, m := range d.Members {
		if m.State != store.StateReady || m.Backend != "local" || m.Impl != 0 || m.Since.IsZero() || m.Address == "" || m.NodeID == "" {
			t.Errorf("member %+v", m)
		}
		if m.Node == "db" && m.Resource["name"] != "[REDACTED]" {
			t.Errorf("db resource %v: the name is a secret", m.Resource)
		}
		if m.Resource["type"] != "local" {
			t.Errorf("resource %v", m.Resource)
		}
	}
	expect(t, call(t, "GET", hs.URL+"/infrastructures/nope/detail", ""), 404)

	var ov struct {
		Infrastructures []struct {
			InfraID, Name string
			Instances     map[string]int
		}
	}
	if err := json.Unmarshal(call(t, "GET", hs.URL+"/overview", "").body, &ov); err != nil {
		t.Fatal(err)
	}
	if len(ov.Infrastructures) != 2 || ov.Infrastructures[0].InfraID != id || ov.Infrastructures[1].InfraID != other ||
		ov.Infrastructures[0].Name != "dash-graph" || ov.Infrastructures[0].Instances["ready"] != 2 {
		t.Errorf("overview %+v", ov)
	}
}
