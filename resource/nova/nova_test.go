package nova

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/nova/novafake"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

const userData = "#cloud-config\nwrite_files:\n- content: \"Hello World! I am the receiver node created by Occopus.\\n\"\n  path: /tmp/message.txt\n  permissions: '0644'\n"

func passwordAuth(f *novafake.Server) map[string]any {
	return map[string]any{"username": f.User(), "password": f.Password()}
}

func appCredAuth(f *novafake.Server) map[string]any {
	id, secret := f.AppCredential()
	return map[string]any{"type": "application_credential", "id": id, "secret": secret}
}

// baseResource is a nova-ping style resource section pointing at the fake.
func baseResource(f *novafake.Server) map[string]any {
	return map[string]any{
		"type": "nova", "endpoint": f.URL(), "project_id": "proj-1", "user_domain_name": "Default",
		"image_id": "img-1", "flavor_name": "m1.small", "network_id": "net-private",
	}
}

func with(base map[string]any, kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
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

func withLogger(l *slog.Logger) testOpt { return func(c *resource.Config) { c.Logger = l } }

func withLimiter(l resource.Limiter) testOpt { return func(c *resource.Config) { c.Limiter = l } }

// newTest builds a handler against the fake with fast retries and polls.
func newTest(t *testing.T, f *novafake.Server, res, auth map[string]any, opts ...testOpt) *Handler {
	t.Helper()
	if res == nil {
		res = baseResource(f)
	}
	if auth == nil {
		auth = passwordAuth(f)
	}
	cfg := resource.Config{Resource: res, Auth: auth}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := newHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.cloud.Policy = cloudapi.Policy{Base: time.Millisecond, Max: 4 * time.Millisecond}
	h.pollFirst, h.pollMax = time.Millisecond, 5*time.Millisecond
	return h
}

func newSpec(res map[string]any, node string) resource.Spec {
	return resource.Spec{
		InfraID: "infra-1", NodeID: node, NodeName: "web", Resource: res,
		Context: resource.Context{UserData: userData},
	}
}

// jsonEq compares two JSON documents by value.
func jsonEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("%s:\n got %s\nwant %s", what, gi, wi)
	}
}

func TestCreateRequestBody(t *testing.T) {
	ud := base64.StdEncoding.EncodeToString([]byte(userData))
	meta := `{"occopus_infra_id": "infra-1", "occopus_node_id": "n1", "occopus_node_name": "web"}`
	cases := []struct {
		name  string
		res   map[string]any
		store string
		want  string
	}{
		{"with the store's id", map[string]any{"network_id": nil}, "5a1e0c2d-0000-4000-8000-000000000001",
			`{"server": {"name": "web-n1", "imageRef": "img-1", "flavorRef": "f-1", "user_data": "` + ud + `", "metadata":
			 {"occopus_infra_id": "infra-1", "occopus_node_id": "n1", "occopus_node_name": "web", "occopus_store_id": "5a1e0c2d-0000-4000-8000-000000000001"}}}`},
		{"nova-ping section", map[string]any{"server_name": "mypingreceiver", "key_name": "mykey", "security_groups": []any{"default", "ping"}}, "",
			`{"server": {"name": "mypingreceiver", "imageRef": "img-1", "flavorRef": "f-1", "user_data": "` + ud + `",
			 "networks": [{"uuid": "net-private"}], "key_name": "mykey",
			 "security_groups": [{"name": "default"}, {"name": "ping"}], "metadata": ` + meta + `}}`},
		{"defaults: name from node, no key, no groups, no network", map[string]any{"network_id": nil}, "",
			`{"server": {"name": "web-n1", "imageRef": "img-1", "flavorRef": "f-1", "user_data": "` + ud + `", "metadata": ` + meta + `}}`},
		{"flavor given by id", map[string]any{"flavor_name": "f-2"}, "",
			`{"server": {"name": "web-n1", "imageRef": "img-1", "flavorRef": "f-2", "user_data": "` + ud + `",
			 "networks": [{"uuid": "net-private"}], "metadata": ` + meta + `}}`},
		{"boot from volume, deleted with the server", map[string]any{"volume_size": 20}, "",
			`{"server": {"name": "web-n1", "imageRef": "", "flavorRef": "f-1", "user_data": "` + ud + `",
			 "networks": [{"uuid": "net-private"}], "metadata": ` + meta + `,
			 "block_device_mapping_v2": [{"source_type": "image", "uuid": "img-1", "destination_type": "volume",
			   "volume_size": 20, "boot_index": 0, "delete_on_termination": true}]}}`},
		{"boot from a persistent volume", map[string]any{"volume_size": "8", "volume_persist": true, "security_groups": "only"}, "",
			`{"server": {"name": "web-n1", "imageRef": "", "flavorRef": "f-1", "user_data": "` + ud + `",
			 "networks": [{"uuid": "net-private"}], "metadata": ` + meta + `, "security_groups": [{"name": "only"}],
			 "block_device_mapping_v2": [{"source_type": "image", "uuid": "img-1", "destination_type": "volume",
			   "volume_size": 8, "boot_index": 0, "delete_on_termination": false}]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			res := with(baseResource(f), tc.res)
			h := newTest(t, f, res, nil)
			spec := newSpec(res, "n1")
			spec.StoreID = tc.store
			hd, err := h.Create(t.Context(), spec)
			if err != nil {
				t.Fatal(err)
			}
			bodies := f.Bodies("POST", "/compute/v2.1/servers")
			if len(bodies) != 1 {
				t.Fatalf("%d create requests, want 1", len(bodies))
			}
			jsonEq(t, "create body", bodies[0], tc.want)
			var b struct {
				Server struct {
					UserData string `json:"user_data"`
				} `json:"server"`
			}
			_ = json.Unmarshal(bodies[0], &b)
			if got, _ := base64.StdEncoding.DecodeString(b.Server.UserData); string(got) != userData {
				t.Errorf("user data = %q, want the rendered template %q", got, userData)
			}
			if srv := f.Servers(); len(srv) != 1 || srv[0].ID != hd.ID {
				t.Errorf("servers %v, handle %s", srv, hd.ID)
			}
		})
	}
}

func TestAuthBodies(t *testing.T) {
	cases := []struct {
		name string
		res  map[string]any
		auth func(f *novafake.Server) map[string]any
		want string
	}{
		{"password scoped to project_id", nil, passwordAuth,
			`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "alice", "password": "pa55-w0rd-SECRET", "domain": {"name": "Default"}}}},
			  "scope": {"project": {"id": "proj-1"}}}}`},
		{"user domain from the resource", map[string]any{"user_domain_name": "Users"}, passwordAuth,
			`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "alice", "password": "pa55-w0rd-SECRET", "domain": {"name": "Users"}}}},
			  "scope": {"project": {"id": "proj-1"}}}}`},
		{"user domain defaults to Default", map[string]any{"user_domain_name": nil}, passwordAuth,
			`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "alice", "password": "pa55-w0rd-SECRET", "domain": {"name": "Default"}}}},
			  "scope": {"project": {"id": "proj-1"}}}}`},
		{"deprecated tenant_name is the project name", map[string]any{"project_id": nil, "tenant_name": "demo"}, passwordAuth,
			`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "alice", "password": "pa55-w0rd-SECRET", "domain": {"name": "Default"}}}},
			  "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}}`},
		{"application credential, no scope", nil, appCredAuth,
			`{"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac-0123", "secret": "ac-SECRET-xyz"}}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			h := newTest(t, f, with(baseResource(f), tc.res), tc.auth(f))
			if _, err := h.List(t.Context(), "infra-1"); err != nil {
				t.Fatal(err)
			}
			bodies := f.Bodies("POST", "/v3/auth/tokens")
			if len(bodies) != 1 {
				t.Fatalf("%d token requests, want 1", len(bodies))
			}
			jsonEq(t, "token request", bodies[0], tc.want)
		})
	}
}

func TestEndpointForms(t *testing.T) {
	cases := []struct{ prefix, suffix string }{
		{"", ""}, {"", "/"}, {"", "/v3"}, {"", "/v3/"}, {"/identity", ""}, {"/identity", "/v3"}, {"/identity", "/v2.0"},
	}
	for _, tc := range cases {
		t.Run(tc.prefix+tc.suffix, func(t *testing.T) {
			f := newFake(t, novafake.Options{IdentityPrefix: tc.prefix})
			res := with(baseResource(f), map[string]any{"endpoint": f.BaseURL() + tc.prefix + tc.suffix})
			h := newTest(t, f, res, nil)
			if _, err := h.Create(t.Context(), newSpec(res, "n1")); err != nil {
				t.Fatal(err)
			}
			if n := f.Count("POST", tc.prefix+"/v3/auth/tokens"); n != 1 {
				t.Errorf("token requests at %s/v3/auth/tokens: %d, want 1; requests %v", tc.prefix, n, f.Requests())
			}
		})
	}
	for _, bad := range []string{"replace_with_endpoint_of_nova_interface_of_your_cloud", "ftp://x/v3", ""} {
		_, err := New(resource.Config{Resource: map[string]any{"type": "nova", "endpoint": bad, "project_id": "p"}, Auth: map[string]any{"username": "u", "password": "p"}})
		if err == nil || !strings.Contains(err.Error(), "endpoint") {
			t.Errorf("endpoint %q: err %v, want one naming the endpoint", bad, err)
		}
	}
}

func TestRegion(t *testing.T) {
	f := newFake(t, novafake.Options{Regions: []string{"RegionOne", "RegionTwo"}})
	res := with(baseResource(f), map[string]any{"region_name": "RegionTwo"})
	h := newTest(t, f, res, nil)
	hd, err := h.Create(t.Context(), newSpec(res, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if srv := f.Servers(); len(srv) != 1 || srv[0].Region != "RegionTwo" || srv[0].ID != hd.ID {
		t.Fatalf("servers %+v, want one in RegionTwo", srv)
	}
	res = with(res, map[string]any{"region_name": "Nowhere"})
	_, err = newTest(t, f, res, nil).Create(t.Context(), newSpec(res, "n2"))
	if err == nil || !strings.Contains(err.Error(), `"Nowhere"`) || !strings.Contains(err.Error(), "RegionTwo") {
		t.Fatalf("unknown region: %v", err)
	}
}

// One server, whatever happened to the first create request.
func TestCreateIdempotentAcrossRetries(t *testing.T) {
	cases := []struct {
		name      string
		fault     *novafake.Fault
		wantPosts int
	}{
		{"answer lost after the server was made", &novafake.Fault{Method: "POST", Path: "/servers", Reset: true, After: true}, 1},
		{"connection reset before Nova saw it", &novafake.Fault{Method: "POST", Path: "/servers", Reset: true}, 2},
		{"503 before Nova made it", &novafake.Fault{Method: "POST", Path: "/servers", Status: 503}, 2},
		{"429 twice", &novafake.Fault{Method: "POST", Path: "/servers", Status: 429, Times: 2, Body: `{"overLimit": {"message": "Rate limit", "code": 429}}`}, 3},
		{"answer lost twice", &novafake.Fault{Method: "POST", Path: "/servers", Reset: true, After: true, Times: 2}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.Inject(tc.fault)
			res := baseResource(f)
			h := newTest(t, f, res, nil)
			hd, err := h.Create(t.Context(), newSpec(res, "n1"))
			if err != nil {
				t.Fatal(err)
			}
			srv := f.Servers()
			if len(srv) != 1 || srv[0].ID != hd.ID {
				t.Fatalf("servers %+v, handle %s: want exactly the one server", srv, hd.ID)
			}
			if n := f.Count("POST", "/servers"); n != tc.wantPosts {
				t.Errorf("%d create requests, want %d", n, tc.wantPosts)
			}
			// A second Create (the engine retrying after a crash) adopts it.
			h2 := newTest(t, f, res, nil)
			again, err := h2.Create(t.Context(), newSpec(res, "n1"))
			if err != nil || again.ID != hd.ID || len(f.Servers()) != 1 {
				t.Fatalf("second Create = %s, %v; servers %d", again.ID, err, len(f.Servers()))
			}
		})
	}
}

func TestRecoversFromTransientErrors(t *testing.T) {
	cases := []struct {
		name  string
		fault *novafake.Fault
		op    func(t *testing.T, h *Handler, f *novafake.Server)
		path  string
		want  int // requests to path
	}{
		{"429 on token", &novafake.Fault{Method: "POST", Path: "/auth/tokens", Status: 429, Body: `{"error": {"code": 429, "message": "slow down"}}`}, createOp, "/auth/tokens", 2},
		{"503 on token", &novafake.Fault{Method: "POST", Path: "/auth/tokens", Status: 503, Times: 3}, createOp, "/auth/tokens", 4},
		{"502 on flavors", &novafake.Fault{Method: "GET", Path: "/flavors/detail", Status: 502}, createOp, "/flavors/detail", 2},
		{"500 on server list", &novafake.Fault{Method: "GET", Path: "/servers/detail", Status: 500}, createOp, "/servers/detail", 2},
		{"504 on delete", &novafake.Fault{Method: "DELETE", Path: "/servers/srv-0001", Status: 504}, destroyOp, "/servers/srv-0001", 2},
		{"503 on state", &novafake.Fault{Method: "GET", Path: "/servers/srv-0001", Status: 503, Times: 2}, stateOp, "/servers/srv-0001", 3},
		{"429 on floating IP allocation", &novafake.Fault{Method: "POST", Path: "/floatingips", Status: 429}, fipOp, "/floatingips", 2},
		{"reset on floating IP association", &novafake.Fault{Method: "PUT", Path: "/floatingips/fip-0002", Reset: true}, fipOp, "/floatingips/fip-0002", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.Inject(tc.fault)
			h := newTest(t, f, nil, nil)
			tc.op(t, h, f)
			if n := f.Count(tc.fault.Method, tc.path); n != tc.want {
				t.Errorf("%d %s %s requests, want %d", n, tc.fault.Method, tc.path, tc.want)
			}
		})
	}
}

func createOp(t *testing.T, h *Handler, f *novafake.Server) {
	t.Helper()
	if _, err := h.Create(t.Context(), newSpec(baseResource(f), "n1")); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Servers()); n != 1 {
		t.Fatalf("%d servers, want 1", n)
	}
}

func destroyOp(t *testing.T, h *Handler, f *novafake.Server) {
	t.Helper()
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Servers()); n != 0 {
		t.Fatalf("%d servers after Destroy", n)
	}
}

func stateOp(t *testing.T, h *Handler, f *novafake.Server) {
	t.Helper()
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := h.State(t.Context(), hd); err != nil || st != resource.StatePending {
		t.Fatalf("State = %s, %v; want pending", st, err)
	}
}

func fipOp(t *testing.T, h *Handler, f *novafake.Server) {
	t.Helper()
	res := with(baseResource(f), map[string]any{"floating_ip": "yes", "floating_ip_pool": "public"})
	if _, err := h.Create(t.Context(), newSpec(res, "n1")); err != nil {
		t.Fatal(err)
	}
	if fips := f.FloatingIPs(); len(fips) != 1 || fips[0]["port_id"] != "port-srv-0001" {
		t.Fatalf("floating IPs %v, want one on port-srv-0001", fips)
	}
}

func TestPermanentErrors(t *testing.T) {
	cases := []struct {
		name     string
		fault    *novafake.Fault
		res      map[string]any
		auth     map[string]any
		wantIn   []string
		path     string // requests to it: exactly one (no retry)
		noServer bool
	}{
		{"invalid flavor", &novafake.Fault{Method: "POST", Path: "/servers", Status: 400, Body: `{"badRequest": {"message": "Invalid flavorRef provided.", "code": 400}}`}, nil, nil,
			[]string{"create server for node n1", "POST ", "/RegionOne/compute/v2.1/servers", "HTTP 400", "Invalid flavorRef provided."}, "/compute/v2.1/servers", true},
		{"quota", &novafake.Fault{Method: "POST", Path: "/servers", Status: 403, Body: `{"forbidden": {"message": "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances", "code": 403}}`}, nil, nil,
			[]string{"node n1", "HTTP 403", "Quota exceeded for instances"}, "/compute/v2.1/servers", true},
		{"wrong password", nil, nil, map[string]any{"username": "alice", "password": "wrong-SECRET-guess"},
			[]string{"authenticate", "/v3/auth/tokens", "HTTP 401", "requires authentication"}, "/auth/tokens", true},
		{"unknown flavor name", nil, map[string]any{"flavor_name": "m1.huge"}, nil,
			[]string{"node n1", `"m1.huge"`, "m1.medium, m1.small"}, "/flavors/detail", true},
		{"unknown floating IP pool: the server is removed again", nil, map[string]any{"floating_ip": true, "floating_ip_pool": "nope"}, nil,
			[]string{"node n1", `"nope"`, "public"}, "/networks", true},
		{"bad floating_ip value", nil, map[string]any{"floating_ip": "add_yes_if_you_need_floating_ip_or_remove"}, nil,
			[]string{"node n1", "floating_ip", "add_yes_if_you_need"}, "", true},
		{"neutron refuses the allocation", &novafake.Fault{Method: "POST", Path: "/floatingips", Status: 409, Body: `{"NeutronError": {"type": "IpAddressGenerationFailure", "message": "No more IP addresses available on network ext-net-id.", "detail": ""}}`},
			map[string]any{"floating_ip": "yes", "floating_ip_pool": "public"}, nil,
			[]string{"node n1", "allocate floating IP from public", "HTTP 409", "IpAddressGenerationFailure: No more IP addresses"}, "/floatingips", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.fault != nil {
				f.Inject(tc.fault)
			}
			res := with(baseResource(f), tc.res)
			h := newTest(t, f, res, tc.auth)
			_, err := h.Create(t.Context(), newSpec(res, "n1"))
			if err == nil {
				t.Fatal("Create succeeded")
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.path != "" {
				method := "GET"
				if strings.HasSuffix(tc.path, "/auth/tokens") {
					method = "POST"
				}
				if tc.fault != nil {
					method = tc.fault.Method
				}
				if n := f.Count(method, tc.path); n != 1 {
					t.Errorf("%d %s %s requests, want 1 (permanent errors are not retried)", n, method, tc.path)
				}
			}
			if tc.noServer && len(f.Servers()) != 0 {
				t.Errorf("servers left: %+v", f.Servers())
			}
			if len(f.FloatingIPs()) != 0 {
				t.Errorf("floating IPs left: %v", f.FloatingIPs())
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestGivesUpAfterAttempts(t *testing.T) {
	f := newFake(t)
	f.Inject(&novafake.Fault{Method: "POST", Path: "/servers", Status: 503, Times: 100, Body: `{"computeFault": {"message": "Nova is down", "code": 503}}`})
	h := newTest(t, f, nil, nil)
	_, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 503 || e.Attempts != 6 || !strings.Contains(err.Error(), "Nova is down") || !strings.Contains(err.Error(), "gave up after 6 attempts") {
		t.Fatalf("err = %v, want HTTP 503 after 6 attempts", err)
	}
	if n := f.Count("POST", "/servers"); n != 6 {
		t.Errorf("%d create requests, want 6", n)
	}
}

func TestContextEndsRetries(t *testing.T) {
	f := newFake(t)
	f.Inject(&novafake.Fault{Method: "GET", Path: "/flavors/detail", Status: 503, Times: 100})
	h := newTest(t, f, nil, nil)
	h.cloud.Policy = cloudapi.Policy{Attempts: 100, Base: time.Hour}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Create(ctx, newSpec(baseResource(f), "n1"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s, want the deadline, promptly", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("error %q should still say what failed", err)
	}

	// The rate limit wait honours the context too.
	h = newTest(t, f, nil, nil, withLimiter(cloudapi.NewLimiters(0.0001, 1)))
	ctx, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	if _, err := h.List(ctx, "infra-1"); err == nil {
		t.Fatal("List past the rate limit and the deadline succeeded")
	}
}

func TestFloatingIP(t *testing.T) {
	f := newFake(t)
	res := with(baseResource(f), map[string]any{"floating_ip": "yes", "floating_ip_pool": "public"})
	h := newTest(t, f, res, nil)
	spec := newSpec(res, "n1")
	hd, err := h.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	allocs := f.Bodies("POST", "/floatingips")
	if len(allocs) != 1 {
		t.Fatalf("%d allocations, want 1", len(allocs))
	}
	jsonEq(t, "allocation", allocs[0], `{"floatingip": {"floating_network_id": "ext-net-id", "description": "occopus:infra-1:n1"}}`)
	fips := f.FloatingIPs()
	if len(fips) != 1 {
		t.Fatalf("floating IPs %v", fips)
	}
	fipID := fips[0]["id"].(string)
	assoc := f.Bodies("PUT", "/floatingips/"+fipID)
	if len(assoc) != 1 {
		t.Fatalf("%d associations, want 1", len(assoc))
	}
	jsonEq(t, "association", assoc[0], `{"floatingip": {"port_id": "port-`+hd.ID+`"}}`)
	// Associated only once the server was ACTIVE.
	var sawActive bool
	for _, r := range f.Requests() {
		if r.Method == "PUT" {
			break
		}
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/servers/"+hd.ID) {
			sawActive = true
		}
	}
	if !sawActive {
		t.Error("the floating IP was associated before the server was polled to ACTIVE")
	}
	if d := parseData(hd); d.FloatingIPID != fipID || d.FloatingIP != fips[0]["floating_ip_address"] {
		t.Errorf("handle data %+v, want floating IP %s", d, fipID)
	}
	addr, err := h.Addresses(t.Context(), hd)
	if err != nil || addr.Public != fips[0]["floating_ip_address"] || addr.Private != "127.30.0.3" {
		t.Errorf("Addresses = %+v, %v; want public %v private 127.30.0.3", addr, err, fips[0]["floating_ip_address"])
	}

	// Create again: the same server and the same address, nothing new.
	again, err := h.Create(t.Context(), spec)
	if err != nil || again.ID != hd.ID || parseData(again).FloatingIPID != fipID {
		t.Fatalf("second Create = %+v, %v", again, err)
	}
	if n := f.Count("POST", "/floatingips"); n != 1 {
		t.Errorf("%d allocations after a second Create, want 1", n)
	}

	if err := h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range f.Requests() {
		if r.Method == "DELETE" {
			order = append(order, r.Path[strings.LastIndex(r.Path, "/")+1:])
		}
	}
	if want := []string{fipID, hd.ID}; !reflect.DeepEqual(order, want) {
		t.Errorf("deletes %v, want the floating IP released before the server: %v", order, want)
	}
	if len(f.FloatingIPs()) != 0 || len(f.Servers()) != 0 {
		t.Errorf("left: %v %v", f.FloatingIPs(), f.Servers())
	}
}

// Destroy of a listed (data-less) handle still releases the node's IP.
func TestDestroyFromListReleasesFloatingIP(t *testing.T) {
	f := newFake(t)
	res := with(baseResource(f), map[string]any{"floating_ip": true, "floating_ip_pool": "ext-net-id"})
	h := newTest(t, f, res, nil)
	if _, err := h.Create(t.Context(), newSpec(res, "n1")); err != nil {
		t.Fatal(err)
	}
	owned, err := h.List(t.Context(), "infra-1")
	if err != nil || len(owned) != 1 {
		t.Fatalf("List = %+v, %v", owned, err)
	}
	if err := h.Destroy(t.Context(), resource.Handle{ID: owned[0].Handle.ID}); err != nil {
		t.Fatal(err)
	}
	if len(f.FloatingIPs()) != 0 || len(f.Servers()) != 0 {
		t.Errorf("left: %v %v", f.FloatingIPs(), f.Servers())
	}
}

func TestBootFailure(t *testing.T) {
	f := newFake(t)
	f.SetBootFault("No valid host was found. There are not enough hosts available.")
	res := with(baseResource(f), map[string]any{"floating_ip": "yes", "floating_ip_pool": "public"})
	h := newTest(t, f, res, nil)
	_, err := h.Create(t.Context(), newSpec(res, "n1"))
	if err == nil || !strings.Contains(err.Error(), "No valid host") || !strings.Contains(err.Error(), "node n1") {
		t.Fatalf("err = %v", err)
	}
	if len(f.Servers()) != 0 || len(f.FloatingIPs()) != 0 {
		t.Errorf("left: %v %v", f.Servers(), f.FloatingIPs())
	}
}

func TestState(t *testing.T) {
	cases := []struct {
		status, task string
		want         resource.State
	}{
		{"ACTIVE", "", resource.StateRunning},
		{"BUILD", "spawning", resource.StatePending},
		{"REBOOT", "", resource.StatePending},
		{"SHUTOFF", "", resource.StateShutdown},
		{"DELETED", "", resource.StateShutdown},
		{"SOFT_DELETED", "", resource.StateShutdown},
		{"ACTIVE", "deleting", resource.StateShutdown},
		{"ERROR", "", resource.StateFailed},
		{"UNKNOWN", "", resource.StateUnknown},
	}
	f := newFake(t)
	f.SetBuildPolls(1000)
	h := newTest(t, f, nil, nil)
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		f.SetStatus(hd.ID, tc.status, tc.task)
		if st, err := h.State(t.Context(), hd); err != nil || st != tc.want {
			t.Errorf("%s/%s: State = %s, %v; want %s", tc.status, tc.task, st, err, tc.want)
		}
	}
	f.Kill(hd.ID)
	if _, err := h.State(t.Context(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State of a deleted server: %v, want ErrNotFound", err)
	}
	if _, err := h.Addresses(t.Context(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Addresses of a deleted server: %v, want ErrNotFound", err)
	}
	if err := h.Destroy(t.Context(), hd); err != nil {
		t.Errorf("Destroy of a deleted server: %v", err)
	}
}

func TestNoCredentials(t *testing.T) {
	res := map[string]any{"type": "nova", "endpoint": "https://keystone.example.org:5000/v3", "project_id": "p", "image_id": "i", "flavor_name": "f"}
	cases := []struct {
		name string
		auth map[string]any
		want []string
	}{
		{"no auth_data entry", nil, []string{"no credentials", "https://keystone.example.org:5000/v3", "auth_data", "username and password"}},
		{"no password", map[string]any{"username": "u"}, []string{"lack password"}},
		{"application credential without secret", map[string]any{"type": "application_credential", "id": "x"}, []string{"lacks secret"}},
		{"unknown type", map[string]any{"type": "token", "token": "abc"}, []string{`"token"`, "not supported"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resource.New(resource.Config{Resource: res, Auth: tc.auth})
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
	if _, err := resource.New(resource.Config{Resource: res, Auth: map[string]any{"username": "u", "password": "p"}}); err != nil {
		t.Errorf("New with credentials: %v", err)
	}
}

// Secrets stay out of errors and logs, even when the cloud quotes them.
func TestSecretsNeverShown(t *testing.T) {
	cases := []struct {
		name   string
		auth   map[string]any
		secret string
	}{
		{"password", map[string]any{"username": "alice", "password": "not-the-pw-SECRET-1"}, "not-the-pw-SECRET-1"},
		{"application credential", map[string]any{"type": "application_credential", "id": "ac-0123", "secret": "bad-ac-SECRET-2"}, "bad-ac-SECRET-2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.SetEchoSecrets(true)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := newTest(t, f, nil, tc.auth, withLogger(log))
			_, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
			if err == nil {
				t.Fatal("Create succeeded with a wrong secret")
			}
			if strings.Contains(err.Error(), tc.secret) || strings.Contains(fmt.Sprintf("%+v", err), tc.secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("error %q should give the code and the (redacted) message", err)
			}
			if strings.Contains(logs.String(), tc.secret) {
				t.Errorf("logs show the secret: %s", logs.String())
			}
		})
	}
	// A successful run with retries logs nothing secret either.
	f := newFake(t)
	f.Inject(&novafake.Fault{Method: "POST", Path: "/auth/tokens", Status: 503})
	var logs bytes.Buffer
	h := newTest(t, f, nil, nil, withLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if _, err := h.Create(t.Context(), newSpec(baseResource(f), "n1")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), f.Password()) {
		t.Errorf("logs show the password: %s", logs.String())
	}
}

func TestListAndFindByMetadata(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f, nil, nil)
	res := baseResource(f)
	a, _ := h.Create(t.Context(), newSpec(res, "n1"))
	b, _ := h.Create(t.Context(), newSpec(res, "n2"))
	other := newSpec(res, "n1")
	other.InfraID = "infra-2"
	c, _ := h.Create(t.Context(), other)
	got, err := h.List(t.Context(), "infra-1")
	if err != nil || len(got) != 2 || got[0].Handle.ID != a.ID || got[1].Handle.ID != b.ID || got[0].NodeName != "web" {
		t.Fatalf("List = %+v, %v", got, err)
	}
	if hd, found, err := h.Find(t.Context(), "infra-2", "n1"); err != nil || !found || hd.ID != c.ID {
		t.Fatalf("Find = %v %v %v, want %s", hd, found, err, c.ID)
	}
	// A server being deleted is neither listed nor found.
	f.SetStatus(b.ID, "ACTIVE", "deleting")
	if got, _ := h.List(t.Context(), "infra-1"); len(got) != 1 {
		t.Errorf("List with a server being deleted = %+v", got)
	}
	if _, found, _ := h.Find(t.Context(), "infra-1", "n2"); found {
		t.Error("Find returned a server being deleted")
	}
}

// ListAll finds every live server of the project with an infra id and a
// node id in its metadata, and the store id it carries; a server being
// deleted, one with an infra id only (made by hand) and one without
// occopus's metadata are left out.
func TestListAll(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f, nil, nil)
	res := baseResource(f)
	ours, other, old, deleting := newSpec(res, "n1"), newSpec(res, "n2"), newSpec(res, "n3"), newSpec(res, "n4")
	ours.StoreID, other.StoreID, deleting.StoreID = "store-a", "store-b", "store-a"
	other.InfraID, old.InfraID = "infra-2", "infra-3"
	hds := map[string]resource.Handle{}
	for name, s := range map[string]resource.Spec{"ours": ours, "other": other, "old": old, "deleting": deleting} {
		hd, err := h.Create(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		hds[name] = hd
	}
	f.SetStatus(hds["deleting"].ID, "ACTIVE", "deleting")
	c, err := h.connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, meta := range []map[string]string{{MetaInfraID: "by-hand"}, {"owner": "someone"}} {
		if _, err := servers.Create(t.Context(), c.compute, servers.CreateOpts{Name: fmt.Sprint("hand-", i), ImageRef: "img-1", FlavorRef: "f-1", Metadata: meta}, nil).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []resource.Owned{
		{Handle: makeHandle(hds["ours"].ID, handleData{InfraID: "infra-1", NodeID: "n1"}), InfraID: "infra-1", NodeID: "n1", NodeName: "web", StoreID: "store-a"},
		{Handle: makeHandle(hds["other"].ID, handleData{InfraID: "infra-2", NodeID: "n2"}), InfraID: "infra-2", NodeID: "n2", NodeName: "web", StoreID: "store-b"},
		{Handle: makeHandle(hds["old"].ID, handleData{InfraID: "infra-3", NodeID: "n3"}), InfraID: "infra-3", NodeID: "n3", NodeName: "web"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListAll = %+v\nwant %+v", got, want)
	}
	// What ListAll gives is enough to remove the server.
	if err := h.Destroy(t.Context(), got[2].Handle); err != nil {
		t.Fatal(err)
	}
	if _, err := h.State(t.Context(), hds["old"]); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State after Destroy of the listed handle: %v, want not found", err)
	}
}

func TestConformance(t *testing.T) {
	for _, fip := range []bool{false, true} {
		t.Run(fmt.Sprintf("floating_ip=%v", fip), func(t *testing.T) {
			f := newFake(t)
			res := baseResource(f)
			if fip {
				res = with(res, map[string]any{"floating_ip": "yes", "floating_ip_pool": "public"})
			}
			h := newTest(t, f, res, nil)
			var n atomic.Int64
			resourcetest.Run(t, h, func(t *testing.T) resource.Spec {
				i := n.Add(1)
				return resource.Spec{
					InfraID: fmt.Sprintf("infra-%d", i), NodeID: fmt.Sprintf("node-%d", i), NodeName: "web",
					Resource: res, Context: resource.Context{UserData: userData},
				}
			}, resourcetest.WithTimeout(5*time.Second), resourcetest.WithKill(func(t *testing.T, hd resource.Handle) { f.Kill(hd.ID) }))
			t.Cleanup(func() {
				if s := f.Servers(); len(s) != 0 {
					t.Errorf("servers left: %+v", s)
				}
				if fips := f.FloatingIPs(); len(fips) != 0 {
					t.Errorf("floating IPs left: %v", fips)
				}
			})
		})
	}
}

// An expired token is renewed (gophercloud's re-authentication, through
// the same transport) and the call goes on.
func TestTokenExpiry(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f, nil, appCredAuth(f))
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	f.RevokeTokens()
	if _, err := h.State(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("POST", "/v3/auth/tokens"); n != 2 {
		t.Errorf("%d token requests, want 2 (login, renewal)", n)
	}
	bodies := f.Bodies("POST", "/v3/auth/tokens")
	jsonEq(t, "renewal", bodies[1], `{"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac-0123", "secret": "ac-SECRET-xyz"}}}}`)
}

// newFake starts a fake cloud (novafake) for the test.
func newFake(t *testing.T, opts ...novafake.Options) *novafake.Server {
	t.Helper()
	var o novafake.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	f := novafake.New(o)
	t.Cleanup(f.Close)
	return f
}

// Every HTTP request, the token requests included, waits in the
// Config.Limiter, keyed by host; two handlers given one Limiter share it.
func TestEveryRequestWaitsInTheLimiter(t *testing.T) {
	f := newFake(t)
	lim := &countingLimiter{}
	res := with(baseResource(f), map[string]any{"floating_ip": "yes", "floating_ip_pool": "public"})
	h1 := newTest(t, f, res, nil, withLimiter(lim))
	h2 := newTest(t, f, res, appCredAuth(f), withLimiter(lim))
	hd, err := h1.Create(t.Context(), newSpec(res, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("POST", "/v3/auth/tokens"); n != 2 {
		t.Errorf("%d token requests, want one per handler", n)
	}
	if got, want := lim.waits(), map[string]int{f.BaseURL(): len(f.Requests())}; !reflect.DeepEqual(got, want) {
		t.Errorf("waits per endpoint = %v, want %v (every request)", got, want)
	}
}

// gophercloud retries nothing behind the Caller's back.
func TestSDKDoesNotRetry(t *testing.T) {
	f := newFake(t)
	f.Inject(&novafake.Fault{Method: "POST", Path: "/servers", Status: 429, Times: 5, Body: `{"overLimit": {"message": "Rate limit", "code": 429}}`})
	h := newTest(t, f, nil, nil)
	h.cloud.Policy.Attempts = 1
	_, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") {
		t.Fatalf("err = %v, want the 429", err)
	}
	if n := f.Count("POST", "/servers"); n != 1 {
		t.Errorf("%d create requests, want 1", n)
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
