package cloudbroker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/cloudbroker/cbfake"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

const userData = "#cloud-config\nwrite_files:\n- content: \"Hello World! I am the receiver node created by Occopus.\\n\"\n  path: /tmp/message.txt\n  permissions: '0644'\n"

func tutorialDescription() map[string]any {
	return map[string]any{"deployment_id": "dep-1", "instance_type_id": "it-1", "key_pair_id": "kp-1", "opened_port": "22,80"}
}

func baseResource(f *cbfake.Server) map[string]any {
	return map[string]any{"type": "cloudbroker", "endpoint": f.URL(), "description": tutorialDescription()}
}

func authOf(f *cbfake.Server) map[string]any {
	return map[string]any{"email": f.Email(), "password": f.Password()}
}

func with(base map[string]any, kv map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range kv {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

type testOpt func(*resource.Config)

func withLogger(l *slog.Logger) testOpt      { return func(c *resource.Config) { c.Logger = l } }
func withLimiter(l resource.Limiter) testOpt { return func(c *resource.Config) { c.Limiter = l } }
func withAuth(a map[string]any) testOpt      { return func(c *resource.Config) { c.Auth = a } }

func newFake(t *testing.T, o ...cbfake.Options) *cbfake.Server {
	t.Helper()
	var opts cbfake.Options
	if len(o) > 0 {
		opts = o[0]
	}
	f := cbfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

// newTest builds a handler against the fake with fast retries.
func newTest(t *testing.T, f *cbfake.Server, opts ...testOpt) *Handler {
	t.Helper()
	cfg := resource.Config{Resource: baseResource(f), Auth: authOf(f)}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := newHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.cloud.Policy = cloudapi.Policy{Base: time.Millisecond, Max: 4 * time.Millisecond}
	return h
}

func newSpec(res map[string]any, node string) resource.Spec {
	return resource.Spec{InfraID: "infra-1", NodeID: node, NodeName: "web", Resource: res,
		Context: resource.Context{UserData: userData}}
}

func requestLines(f *cbfake.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// noLive fails the test if the fake has instances not stopped.
func noLive(t *testing.T, f *cbfake.Server) {
	t.Helper()
	if l := f.Live(); len(l) != 0 {
		t.Errorf("instances left running: %+v", l)
	}
}

func TestCreateRequest(t *testing.T) {
	ud := base64.StdEncoding.EncodeToString([]byte(userData))
	tail := `<name>occopus-web-infra-1-n1</name><cloud-init>` + ud + `</cloud-init><cloud-init-b64>true</cloud-init-b64>`
	cases := []struct {
		name string
		res  func(f *cbfake.Server) map[string]any
		want string // the <instance> element
	}{
		{"the tutorial's description", baseResource,
			`<instance><deployment_id>dep-1</deployment_id><disable_autostop>true</disable_autostop><instance_type_id>it-1</instance_type_id>` +
				`<isolated>true</isolated><key_pair_id>kp-1</key_pair_id><opened_port>22,80</opened_port>` + tail + `</instance>`},
		{"ports as a list, start_in_vpc from the resource section, the description's own isolated and extra keys",
			func(f *cbfake.Server) map[string]any {
				return with(baseResource(f), map[string]any{"start_in_vpc": true,
					"description": with(tutorialDescription(), map[string]any{"opened_port": []any{22, 80, 8080}, "isolated": false, "region_id": "r-7", "key_pair_id": nil})})
			},
			`<instance><deployment_id>dep-1</deployment_id><disable_autostop>true</disable_autostop><instance_type_id>it-1</instance_type_id>` +
				`<isolated>false</isolated><opened_port>22,80,8080</opened_port><region_id>r-7</region_id>` + tail + `<start-in-vpc>true</start-in-vpc></instance>`},
		{"a key without a value is not sent", func(f *cbfake.Server) map[string]any {
			d := tutorialDescription()
			d["region_id"] = nil // as YAML reads `region_id:`
			delete(d, "key_pair_id")
			delete(d, "opened_port")
			return with(baseResource(f), map[string]any{"description": d})
		},
			`<instance><deployment_id>dep-1</deployment_id><disable_autostop>true</disable_autostop><instance_type_id>it-1</instance_type_id>` +
				`<isolated>true</isolated>` + tail + `</instance>`},
		{"text is escaped", func(f *cbfake.Server) map[string]any {
			return with(baseResource(f), map[string]any{"description": with(tutorialDescription(), map[string]any{"instance_type_id": "a<b&c"})})
		},
			`<instance><deployment_id>dep-1</deployment_id><disable_autostop>true</disable_autostop><instance_type_id>a&lt;b&amp;c</instance_type_id>` +
				`<isolated>true</isolated><key_pair_id>kp-1</key_pair_id><opened_port>22,80</opened_port>` + tail + `</instance>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			res := tc.res(f)
			h := newTest(t, f)
			hd, err := h.Create(t.Context(), newSpec(res, "n1"))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := requestLines(f), []string{"GET /instances.xml", "POST /instances.xml"}; !reflect.DeepEqual(got, want) {
				t.Errorf("requests %q, want %q", got, want)
			}
			reqs := f.Requests()
			post := reqs[len(reqs)-1]
			if post.ContentType != "application/xml" {
				t.Errorf("Content-Type %q", post.ContentType)
			}
			if got, want := string(post.Body), xml.Header+tc.want; got != want {
				t.Errorf("body:\n got %s\nwant %s", got, want)
			}
			ins := f.Instances()
			if len(ins) != 1 || ins[0].ID != hd.ID || ins[0].UserData != userData || ins[0].Name != "occopus-web-infra-1-n1" {
				t.Fatalf("instances %+v, want one named after the node whose cloud-init decodes to the render", ins)
			}
		})
	}
}

func TestRequestRefusals(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	descr := func(kv map[string]any) map[string]any {
		return with(baseResource(f), map[string]any{"description": with(tutorialDescription(), kv)})
	}
	cases := []struct {
		name     string
		res      map[string]any
		userData string
		want     []string
	}{
		{"description.name", descr(map[string]any{"name": "mine"}), userData, []string{"node n1", "description.name", "occopus-web-infra-1-n1"}},
		{"a mapping value", descr(map[string]any{"tags": map[string]any{"a": 1}}), userData, []string{"node n1", "description.tags", "not a mapping"}},
		{"a list in a list", descr(map[string]any{"opened_port": []any{[]any{22}}}), userData, []string{"node n1", "opened_port[0]"}},
		{"no element name", descr(map[string]any{"1st": "x"}), userData, []string{"node n1", "description.1st", "element name"}},
		{"no deployment", descr(map[string]any{"deployment_id": nil}), userData, []string{"node n1", `"deployment_id"`}},
		{"no description", with(baseResource(f), map[string]any{"description": nil}), userData, []string{"node n1", `"description"`}},
		{"cloud-init too large", baseResource(f), strings.Repeat("x", maxUserData+1), []string{"node n1", "cloud-init", "bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec(tc.res, "n1")
			spec.Context.UserData = tc.userData
			_, err := h.Create(t.Context(), spec)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d requests for refused creations: %q", n, requestLines(f))
	}
}

// One instance, whatever happened to the answers.
func TestCreateIdempotentAcrossRetries(t *testing.T) {
	cases := []struct {
		name  string
		fault *cbfake.Fault
		posts int
	}{
		{"answer lost after the instance was made", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Reset: true, After: true}, 1},
		{"answer lost twice", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Reset: true, After: true, Times: 2}, 1},
		{"connection reset before the platform saw it", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Reset: true}, 2},
		{"503 before it was made", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Status: 503}, 2},
		{"429 twice", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Status: 429, Times: 2}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.Inject(tc.fault)
			h := newTest(t, f)
			res := baseResource(f)
			hd, err := h.Create(t.Context(), newSpec(res, "n1"))
			if err != nil {
				t.Fatal(err)
			}
			if ins := f.Instances(); len(ins) != 1 || ins[0].ID != hd.ID {
				t.Fatalf("instances %+v, handle %s: want exactly the one", ins, hd.ID)
			}
			if n := f.Count("POST", "/instances.xml"); n != tc.posts {
				t.Errorf("%d create requests, want %d", n, tc.posts)
			}
			again, err := newTest(t, f).Create(t.Context(), newSpec(res, "n1"))
			if err != nil || again.ID != hd.ID || len(f.Instances()) != 1 {
				t.Fatalf("second Create = %s, %v; instances %d", again.ID, err, len(f.Instances()))
			}
			if err := h.Destroy(t.Context(), hd); err != nil {
				t.Fatal(err)
			}
			noLive(t, f)
		})
	}
	// A stopped instance of the node's name is history, not the node.
	f := newFake(t)
	h := newTest(t, f)
	first, _ := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	f.Kill(first.ID)
	second, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil || second.ID == first.ID || len(f.Live()) != 1 {
		t.Errorf("Create after the node's instance halted = %s (first %s), %v; live %d", second.ID, first.ID, err, len(f.Live()))
	}
}

func TestRecoversFromTransientErrors(t *testing.T) {
	type op func(t *testing.T, h *Handler, f *cbfake.Server, inject func(id string))
	create := func(t *testing.T, h *Handler, f *cbfake.Server, inject func(string)) {
		inject("")
		if _, err := h.Create(t.Context(), newSpec(baseResource(f), "n1")); err != nil {
			t.Fatal(err)
		}
		if n := len(f.Instances()); n != 1 {
			t.Fatalf("%d instances, want 1", n)
		}
	}
	destroy := func(t *testing.T, h *Handler, f *cbfake.Server, inject func(string)) {
		hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
		if err != nil {
			t.Fatal(err)
		}
		inject(hd.ID)
		if err := h.Destroy(t.Context(), hd); err != nil {
			t.Fatal(err)
		}
		noLive(t, f)
	}
	state := func(t *testing.T, h *Handler, f *cbfake.Server, inject func(string)) {
		hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
		if err != nil {
			t.Fatal(err)
		}
		inject(hd.ID)
		if st, err := h.State(t.Context(), hd); err != nil || st != resource.StatePending {
			t.Fatalf("State = %s, %v; want pending", st, err)
		}
	}
	cost := func(t *testing.T, h *Handler, f *cbfake.Server, inject func(string)) {
		hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
		if err != nil {
			t.Fatal(err)
		}
		inject(hd.ID)
		if c, ok, err := h.Cost(t.Context(), hd); err != nil || !ok || c.Total != 0.12 {
			t.Fatalf("Cost = %+v, %v, %v", c, ok, err)
		}
	}
	cases := []struct {
		name  string
		fault cbfake.Fault // Path: ID is the instance's id
		op    op
		want  int // requests matching the fault from the injection on
	}{
		{"503 twice on the listing", cbfake.Fault{Method: "GET", Path: "/instances.xml", Status: 503, Times: 2}, create, 3},
		{"a proxy's 502 page on state", cbfake.Fault{Method: "GET", Path: "/instances/ID.xml", Status: 502, Body: "<html><body>Bad Gateway</body></html>"}, state, 2},
		{"reset on stop", cbfake.Fault{Method: "PUT", Path: "/instances/ID/stop", Reset: true}, destroy, 2},
		{"stop answer lost", cbfake.Fault{Method: "PUT", Path: "/instances/ID/stop", Reset: true, After: true}, destroy, 1},
		{"504 on stop", cbfake.Fault{Method: "PUT", Path: "/instances/ID/stop", Status: 504}, destroy, 2},
		{"429 on costs", cbfake.Fault{Method: "GET", Path: "/instances/ID/costs.xml", Status: 429}, cost, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, cbfake.Options{StartPolls: 5})
			h := newTest(t, f)
			mark := 0
			fault := tc.fault
			tc.op(t, h, f, func(id string) {
				fault.Path = strings.ReplaceAll(fault.Path, "ID", id)
				mark = len(f.Requests())
				f.Inject(&fault)
			})
			n := 0
			for _, r := range f.Requests()[mark:] {
				if r.Method == fault.Method && strings.HasSuffix(r.Path, fault.Path) {
					n++
				}
			}
			if n != tc.want {
				t.Errorf("%d %s %s requests, want %d", n, fault.Method, fault.Path, tc.want)
			}
		})
	}
}

func TestPermanentErrors(t *testing.T) {
	cases := []struct {
		name   string
		fault  *cbfake.Fault
		auth   map[string]any
		wantIn []string
		once   [2]string // method and path requested exactly once
	}{
		{"validation", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Status: 422,
			Body: `<?xml version="1.0" encoding="UTF-8"?><errors><error>Deployment is not available for you</error><error>Instance type does not match the deployment</error></errors>`},
			nil, []string{"cloudbroker: create instance for node n1", "POST ", "/instances.xml", "Deployment is not available for you; Instance type does not match the deployment", "HTTP 422"},
			[2]string{"POST", "/instances.xml"}},
		{"forbidden", &cbfake.Fault{Method: "POST", Path: "/instances.xml", Status: 403, Body: `<error><message>Quota of 10 instances reached</message></error>`},
			nil, []string{"node n1", "Quota of 10 instances reached", "HTTP 403"}, [2]string{"POST", "/instances.xml"}},
		{"wrong password", nil, map[string]any{"email": "broker@example.com", "password": "wrong-SECRET-guess"},
			[]string{"node n1", "GET ", "/instances.xml", "Access denied", "HTTP 401"}, [2]string{"GET", "/instances.xml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.fault != nil {
				f.Inject(tc.fault)
			}
			var opts []testOpt
			if tc.auth != nil {
				opts = append(opts, withAuth(tc.auth))
			}
			_, err := newTest(t, f, opts...).Create(t.Context(), newSpec(baseResource(f), "n1"))
			if err == nil {
				t.Fatal("Create succeeded")
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var ce *cloudapi.Error
			if !errors.As(err, &ce) || ce.Provider != "cloudbroker" || ce.Node != "n1" || ce.Attempts != 1 {
				t.Errorf("error %#v: want a cloudapi.Error for node n1 after 1 attempt", err)
			}
			if n := f.Count(tc.once[0], tc.once[1]); n != 1 {
				t.Errorf("%d %s %s requests, want 1", n, tc.once[0], tc.once[1])
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows a secret: %v", err)
			}
			noLive(t, f)
		})
	}
}

func TestState(t *testing.T) {
	cases := []struct {
		status string
		want   resource.State
	}{
		{"starting", resource.StatePending},
		{"initializing", resource.StatePending},
		{"preparing", resource.StatePending},
		{"running", resource.StateRunning},
		{"stopping", resource.StateShutdown},
		{"halted", resource.StateShutdown},
		{"failed", resource.StateFailed},
		{"suspended", resource.StateUnknown},
	}
	f := newFake(t)
	h := newTest(t, f)
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		f.SetStatus(hd.ID, tc.status)
		if st, err := h.State(t.Context(), hd); err != nil || st != tc.want {
			t.Errorf("%s: State = %s, %v; want %s", tc.status, st, err, tc.want)
		}
	}
	f.SetStatus(hd.ID, "halted")
	if _, err := h.Addresses(t.Context(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Addresses of a stopped instance: %v, want ErrNotFound", err)
	}
	gone := resource.Handle{ID: "no-such-instance"}
	if _, err := h.State(t.Context(), gone); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State of an unknown instance: %v, want ErrNotFound", err)
	}
	if err := h.Destroy(t.Context(), gone); err != nil {
		t.Errorf("Destroy of an unknown instance: %v", err)
	}
	if _, _, err := h.Cost(t.Context(), gone); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Cost of an unknown instance: %v, want ErrNotFound", err)
	}
}

func TestAddresses(t *testing.T) {
	f := newFake(t, cbfake.Options{StartPolls: -1})
	h := newTest(t, f)
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	in := f.Instances()[0]
	a, err := h.Addresses(t.Context(), hd)
	if err != nil || a.Public != in.InternalIP || a.Private != in.InternalIP || !strings.HasPrefix(a.Public, "127.70.") {
		t.Errorf("Addresses = %+v, %v; want the internal IP %s (Occopus's IP)", a, err, in.InternalIP)
	}
	// An instance with an external address only (as the platform answers it).
	doc := `<?xml version="1.0" encoding="UTF-8"?><instance><id>` + hd.ID + `</id><status>running</status>` +
		`<external-ip-address>127.71.0.9</external-ip-address><internal-ip-address nil="true"/></instance>`
	f.Inject(&cbfake.Fault{Method: "GET", Path: "/instances/" + hd.ID + ".xml", Status: 200, Body: doc})
	if a, err := h.Addresses(t.Context(), hd); err != nil || a.Public != "127.71.0.9" || a.Private != "127.71.0.9" {
		t.Errorf("Addresses with no internal IP = %+v, %v; want the external one", a, err)
	}
	f.Inject(&cbfake.Fault{Method: "GET", Path: "/instances/" + hd.ID + ".xml", Status: 200,
		Body: `<instance><id>` + hd.ID + `</id><status>starting</status><internal-ip-address nil="true"/></instance>`})
	if _, err := h.Addresses(t.Context(), hd); err == nil || !strings.Contains(err.Error(), "no IP address yet") {
		t.Errorf("Addresses with no IP: %v", err)
	}
}

const (
	uuidInfra = "11111111-1111-4111-8111-000000000001"
	uuidNode  = "22222222-2222-4222-8222-000000000001"
	uuidStore = "33333333-3333-4333-8333-000000000001"
)

func TestOwnerOfNames(t *testing.T) {
	cases := []struct {
		name, infra, wantNode, wantID, wantStore string
		ok                                       bool
	}{
		{instanceName("infra-1", "n1", "web", ""), "infra-1", "web", "n1", "", true},
		{instanceName("0b3c-11", uuidNode, "ping-receiver", ""), "0b3c-11", "ping-receiver", uuidNode, "", true},
		{instanceName("0b3c-11", uuidNode, "ping-receiver", uuidStore), "0b3c-11", "ping-receiver", uuidNode, uuidStore, true},
		{instanceName("infra-1", "n1", "web", uuidStore), "infra-1", "web", "n1", uuidStore, true},
		{instanceName("infra-1", "n1", "web", ""), "infra-2", "", "", "", false},
		{"somebody-else", "infra-1", "", "", "", false},
		{"occopus-web-infra-1-", "infra-1", "", "", "", false},
	}
	for _, tc := range cases {
		node, id, store, ok := owner(tc.name, tc.infra)
		if node != tc.wantNode || id != tc.wantID || store != tc.wantStore || ok != tc.ok {
			t.Errorf("owner(%q, %q) = %q %q %q %v, want %q %q %q %v", tc.name, tc.infra, node, id, store, ok, tc.wantNode, tc.wantID, tc.wantStore, tc.ok)
		}
	}
}

func TestParseName(t *testing.T) {
	cases := []struct {
		name                       string
		nodeName, infra, node, sto string
		ok                         bool
	}{
		{instanceName(uuidInfra, uuidNode, "ping-receiver", uuidStore), "ping-receiver", uuidInfra, uuidNode, uuidStore, true},
		{instanceName(uuidInfra, uuidNode, "web", ""), "web", uuidInfra, uuidNode, "", true},
		{instanceName(uuidInfra, uuidNode, uuidStore, ""), uuidStore, uuidInfra, uuidNode, "", true}, // a node named like a UUID
		// An infra id that is no UUID (the engine makes none) is misread, but
		// as a name without a store id: never taken for this store's.
		{instanceName("infra-1", uuidNode, "web", uuidStore), "web-infra-1", uuidNode, uuidStore, "", true},
		{instanceName(uuidInfra, uuidNode, "", ""), "", "", "", "", false},
		{"occopus-" + uuidInfra + "-" + uuidNode, "", "", "", "", false}, // no node name
		{"somebody-" + uuidInfra + "-" + uuidNode, "", "", "", "", false},
		{"occopus-web", "", "", "", "", false},
	}
	for _, tc := range cases {
		nodeName, infra, node, store, ok := parseName(tc.name)
		if nodeName != tc.nodeName || infra != tc.infra || node != tc.node || store != tc.sto || ok != tc.ok {
			t.Errorf("parseName(%q) = %q %q %q %q %v, want %q %q %q %q %v", tc.name, nodeName, infra, node, store, ok, tc.nodeName, tc.infra, tc.node, tc.sto, tc.ok)
		}
	}
}

// The store id ends the name of what Create makes; an instance an
// earlier version named without it is found, not made again.
func TestCreateNamesTheStore(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	spec := newSpec(baseResource(f), "n1")
	spec.StoreID = uuidStore
	hd, err := h.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if ins := f.Instances(); len(ins) != 1 || ins[0].Name != "occopus-web-infra-1-n1-"+uuidStore || ins[0].ID != hd.ID {
		t.Fatalf("instances %+v, want one named with the store id", ins)
	}
	got, err := h.List(t.Context(), "infra-1")
	if err != nil || len(got) != 1 || got[0].NodeID != "n1" || got[0].StoreID != uuidStore {
		t.Fatalf("List = %+v, %v", got, err)
	}
	// Made before store ids: found by its old name.
	old := newSpec(baseResource(f), "n2")
	first, err := h.Create(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	old.StoreID = uuidStore
	again, err := h.Create(t.Context(), old)
	if err != nil || again.ID != first.ID || len(f.Instances()) != 2 {
		t.Fatalf("Create of a node made without a store id = %s (was %s), %v; %d instances", again.ID, first.ID, err, len(f.Instances()))
	}
}

// ListAll finds the live instances of every infrastructure named by the
// engine's ids, with the store id each name carries.
func TestListAll(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	res := baseResource(f)
	specs := map[string]resource.Spec{}
	for i, store := range []string{uuidStore, "", "33333333-3333-4333-8333-000000000002", uuidStore} {
		s := newSpec(res, fmt.Sprintf("22222222-2222-4222-8222-00000000000%d", i))
		s.InfraID, s.StoreID = fmt.Sprintf("11111111-1111-4111-8111-00000000000%d", i), store
		specs[fmt.Sprint(i)] = s
	}
	hds := map[string]resource.Handle{}
	for k, s := range specs {
		hd, err := h.Create(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		hds[k] = hd
	}
	f.Kill(hds["3"].ID)                                                  // halted: history
	if _, err := h.Create(t.Context(), newSpec(res, "n1")); err != nil { // ids that are no UUIDs
		t.Fatal(err)
	}
	got, err := h.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want []resource.Owned
	for _, k := range []string{"0", "1", "2"} {
		s := specs[k]
		want = append(want, resource.Owned{Handle: makeHandle(hds[k].ID, handleData{InfraID: s.InfraID, NodeID: s.NodeID}),
			InfraID: s.InfraID, NodeID: s.NodeID, NodeName: "web", StoreID: s.StoreID})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListAll = %+v\nwant %+v", got, want)
	}
}

func TestCost(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		fees    []cbfake.Fee // nil: the fake's default
		want    resource.Cost
		ok      bool
		wantErr string
	}{
		{"the fee named Total", nil, resource.Cost{Total: 0.12, Currency: "EUR"}, true, ""},
		{"Total among others, anywhere", []cbfake.Fee{{Name: "Total", Value: " 3.5 ", Currency: "USD"}, {Name: "Instance", Value: "3"}}, resource.Cost{Total: 3.5, Currency: "USD"}, true, ""},
		{"no Total: no cost (not zero)", []cbfake.Fee{{Name: "Instance", Value: "1"}}, resource.Cost{}, false, ""},
		{"no fees", []cbfake.Fee{}, resource.Cost{}, false, ""},
		{"a Total that is no number", []cbfake.Fee{{Name: "Total", Value: "n/a"}}, resource.Cost{}, false, `the Total fee "n/a" is not a number`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fees != nil {
				f.SetFees(hd.ID, tc.fees...)
			}
			c, ok, err := h.Cost(t.Context(), hd)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "node n1") {
					t.Fatalf("err %v, want %q naming the node", err, tc.wantErr)
				}
				return
			}
			if err != nil || ok != tc.ok || c != tc.want {
				t.Errorf("Cost = %+v, %v, %v; want %+v, %v", c, ok, err, tc.want, tc.ok)
			}
		})
	}
	// Fees directly under the root are read too.
	var doc costs
	if err := xml.Unmarshal([]byte(`<costs><fee><name>Total</name><value>1</value></fee></costs>`), &doc); err != nil || len(doc.TopFees) != 1 {
		t.Errorf("top-level fees: %+v, %v", doc, err)
	}
}

func TestListAndFind(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	res := baseResource(f)
	a, _ := h.Create(t.Context(), newSpec(res, "n1"))
	b, _ := h.Create(t.Context(), newSpec(res, "n2"))
	other := newSpec(res, "n1")
	other.InfraID = "infra-2"
	c, _ := h.Create(t.Context(), other)
	got, err := h.List(t.Context(), "infra-1")
	if err != nil || len(got) != 2 || got[0].Handle.ID != a.ID || got[1].Handle.ID != b.ID || got[0].NodeName != "web" || got[1].NodeID != "n2" {
		t.Fatalf("List = %+v, %v", got, err)
	}
	if hd, found, err := h.Find(t.Context(), "infra-2", "n1"); err != nil || !found || hd.ID != c.ID {
		t.Fatalf("Find = %v %v %v, want %s", hd, found, err, c.ID)
	}
	f.Kill(b.ID)
	if got, _ := h.List(t.Context(), "infra-1"); len(got) != 1 {
		t.Errorf("List with a halted instance = %+v", got)
	}
	if _, found, _ := h.Find(t.Context(), "infra-1", "n2"); found {
		t.Error("Find returned a halted instance")
	}
}

func TestConformance(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	var n atomic.Int64
	resourcetest.Run(t, h, func(t *testing.T) resource.Spec {
		i := n.Add(1)
		// UUIDs, as the engine's ids are: ListAll reads them off names.
		return resource.Spec{
			InfraID: fmt.Sprintf("11111111-1111-4111-8111-%012d", i), NodeID: fmt.Sprintf("22222222-2222-4222-8222-%012d", i), NodeName: "web",
			Resource: baseResource(f), Context: resource.Context{UserData: userData},
		}
	}, resourcetest.WithTimeout(5*time.Second), resourcetest.WithKill(func(t *testing.T, hd resource.Handle) { f.Kill(hd.ID) }))
	t.Cleanup(func() { noLive(t, f) })
}

func TestSecretsNeverShown(t *testing.T) {
	f := newFake(t)
	f.SetEchoSecrets(true)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const wrong = "not-the-pw-SECRET-2"
	f.Inject(&cbfake.Fault{Method: "GET", Path: "/instances.xml", Status: 503}) // a retry, logged
	_, err := newTest(t, f, withLogger(log), withAuth(map[string]any{"email": f.Email(), "password": wrong})).
		Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err == nil {
		t.Fatal("Create succeeded with a wrong password")
	}
	basic := base64.StdEncoding.EncodeToString([]byte(f.Email() + ":" + wrong))
	for _, secret := range []string{wrong, basic} {
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("error shows %q: %v", secret, err)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs show %q: %s", secret, logs.String())
		}
	}
	if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %q should give the code and the (redacted) message", err)
	}
}

func TestNoCredentialsOrEndpoint(t *testing.T) {
	res := map[string]any{"type": "cloudbroker", "endpoint": "https://cloudsme.example/", "description": map[string]any{"deployment_id": "d", "instance_type_id": "i"}}
	cases := []struct {
		name string
		res  map[string]any
		auth map[string]any
		want []string
	}{
		{"no auth_data entry", res, nil, []string{"no credentials", "https://cloudsme.example", "email and password"}},
		{"no password", res, map[string]any{"email": "a@b.c"}, []string{"lack password"}},
		{"the tutorial's placeholder endpoint", with(res, map[string]any{"endpoint": "replace_with_endpoint_of_cloudbroker_interface"}),
			map[string]any{"email": "a", "password": "b"}, []string{"endpoint", "not an http(s) URL"}},
		{"no endpoint", with(res, map[string]any{"endpoint": nil}), map[string]any{"email": "a", "password": "b"}, []string{"no endpoint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resource.New(resource.Config{Resource: tc.res, Auth: tc.auth})
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEveryRequestWaitsInTheLimiter(t *testing.T) {
	f := newFake(t)
	lim := &countingLimiter{}
	h := newTest(t, f, withLimiter(lim))
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Cost(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	if got, want := lim.waits(), map[string]int{f.URL(): len(f.Requests())}; !reflect.DeepEqual(got, want) {
		t.Errorf("waits per endpoint = %v, want %v (every request)", got, want)
	}
}

func TestContextEndsRetries(t *testing.T) {
	f := newFake(t)
	f.Inject(&cbfake.Fault{Method: "GET", Path: "/instances.xml", Status: 503, Times: 1000})
	h := newTest(t, f)
	h.cloud.Policy = cloudapi.Policy{Attempts: 1000, Base: time.Hour}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Create(ctx, newSpec(baseResource(f), "n1"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("err %v after %s, want the deadline, promptly, naming the 503", err, time.Since(start))
	}
}

// countingLimiter counts the waits per endpoint; it never waits.
type countingLimiter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingLimiter) Wait(ctx context.Context, endpoint string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[endpoint]++
	return nil
}

func (c *countingLimiter) waits() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}
