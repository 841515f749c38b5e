package cloudsigma

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

	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/cloudsigma/csfake"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

const userData = "#cloud-config\nwrite_files:\n- content: \"Hello World! I am the receiver node created by Occopus.\\n\"\n  path: /tmp/message.txt\n  permissions: '0644'\n"

// tutorialDescription is the description of cloudsigma-ping's nodes.
func tutorialDescription() map[string]any {
	return map[string]any{
		"cpu": 2000, "mem": 1073741824, "vnc_password": "vnc-SECRET-pw",
		"pubkeys": []any{"d1b3c9a4-1c7e-4f6b-9a0e-3b2f5e8d7c61"},
		"nics":    []any{map[string]any{"firewall_policy": "fw-policy-1", "ip_v4_conf": map[string]any{"conf": "dhcp"}}},
	}
}

func baseResource(f *csfake.Server) map[string]any {
	return map[string]any{
		"type": "cloudsigma", "name": "my_cloudsigma_cloud", "endpoint": f.URL(),
		"libdrive_id": csfake.LibDrive, "description": tutorialDescription(),
	}
}

func authOf(f *csfake.Server) map[string]any {
	return map[string]any{"email": f.Email(), "password": f.Password()}
}

type testOpt func(*resource.Config)

func withLogger(l *slog.Logger) testOpt      { return func(c *resource.Config) { c.Logger = l } }
func withLimiter(l resource.Limiter) testOpt { return func(c *resource.Config) { c.Limiter = l } }
func withAuth(a map[string]any) testOpt      { return func(c *resource.Config) { c.Auth = a } }
func withResource(r map[string]any) testOpt  { return func(c *resource.Config) { c.Resource = r } }
func newFake(t *testing.T, o ...csfake.Options) *csfake.Server {
	t.Helper()
	var opts csfake.Options
	if len(o) > 0 {
		opts = o[0]
	}
	f := csfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

// newTest builds a handler against the fake with fast retries and polls.
func newTest(t *testing.T, f *csfake.Server, opts ...testOpt) *Handler {
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
	h.pollFirst, h.pollMax = time.Millisecond, 2*time.Millisecond
	return h
}

func newSpec(res map[string]any, node string) resource.Spec {
	return resource.Spec{InfraID: "infra-1", NodeID: node, NodeName: "web", Resource: res,
		Context: resource.Context{UserData: userData}}
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

// requestLine is "METHOD path?query", without the endpoint's prefix.
func requestLines(f *csfake.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		l := r.Method + " " + strings.TrimPrefix(r.Path, csfake.Prefix)
		if r.Query != "" {
			l += "?" + r.Query
		}
		out = append(out, l)
	}
	return out
}

// leftovers fails the test if the fake still has servers or drives.
func leftovers(t *testing.T, f *csfake.Server) {
	t.Helper()
	if s := f.Servers(); len(s) != 0 {
		t.Errorf("servers left: %+v", s)
	}
	if d := f.Drives(); len(d) != 0 {
		t.Errorf("drives left: %+v", d)
	}
}

func TestCreateRequests(t *testing.T) {
	ud := base64.StdEncoding.EncodeToString([]byte(userData))
	ourMeta := `"occopus_infra_id": "infra-1", "occopus_node_id": "n1", "occopus_node_name": "web",
		"cloudinit-user-data": "` + ud + `"`
	boot := `{"boot_order": 1, "dev_channel": "0:0", "device": "virtio", "drive": "CLONE"}`
	tutorialNICs := `"pubkeys": ["d1b3c9a4-1c7e-4f6b-9a0e-3b2f5e8d7c61"],
		"nics": [{"firewall_policy": "fw-policy-1", "ip_v4_conf": {"conf": "dhcp"}}]`
	cases := []struct {
		name      string
		dataDrive bool // the description attaches a drive of the user's
		descr     func(data string) map[string]any
		want      string
		// wantDelete are the requests Destroy ends with.
		wantDelete []string
	}{
		{"the tutorial's description", false, func(string) map[string]any { return tutorialDescription() },
			`{"objects": [{"cpu": 2000, "mem": 1073741824, "vnc_password": "vnc-SECRET-pw", "name": "web-n1", ` + tutorialNICs + `,
			  "meta": {` + ourMeta + `, "base64_fields": "cloudinit-user-data"}, "drives": [` + boot + `]}]}`,
			[]string{"DELETE /servers/SERVER/?recurse=all_drives"}},
		{"meta and drives are merged, not replaced; the name is kept; the user's drive stays", true,
			func(data string) map[string]any {
				return with(tutorialDescription(), map[string]any{
					"name": "my-server", "smp": 2,
					"meta":   map[string]any{"ssh_public_key": "ssh-ed25519 AAAA", "base64_fields": "motd", "motd": "aGk="},
					"drives": []any{map[string]any{"boot_order": 2, "dev_channel": "0:1", "device": "virtio", "drive": data}},
				})
			},
			`{"objects": [{"cpu": 2000, "mem": 1073741824, "vnc_password": "vnc-SECRET-pw", "name": "my-server", "smp": 2, ` + tutorialNICs + `,
			  "meta": {` + ourMeta + `, "ssh_public_key": "ssh-ed25519 AAAA", "motd": "aGk=", "base64_fields": "motd,cloudinit-user-data"},
			  "drives": [` + boot + `, {"boot_order": 2, "dev_channel": "0:1", "device": "virtio", "drive": "DATA"}]}]}`,
			[]string{"DELETE /servers/SERVER/", "DELETE /drives/CLONE/"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			data := ""
			if tc.dataDrive {
				data = f.AddDrive("my data")
			}
			res := with(baseResource(f), map[string]any{"description": tc.descr(data)})
			h := newTest(t, f, withResource(res))
			hd, err := h.Create(t.Context(), newSpec(res, "n1"))
			if err != nil {
				t.Fatal(err)
			}
			var clone string
			for _, d := range f.Drives() {
				if d.UUID != data {
					clone = d.UUID
				}
			}
			want := []string{
				"GET /servers/detail/?limit=100&offset=0",
				"POST /libdrives/" + csfake.LibDrive + "/action/?do=clone",
				"GET /drives/" + clone + "/", // cloning_dst
				"GET /drives/" + clone + "/", // unmounted
				"POST /servers/",
				"GET /servers/" + hd.ID + "/", // stopped
				"POST /servers/" + hd.ID + "/action/?do=start",
				"GET /servers/" + hd.ID + "/", // starting
			}
			if got := requestLines(f); !reflect.DeepEqual(got, want) {
				t.Errorf("requests:\n got %q\nwant %q", got, want)
			}
			jsonEq(t, "clone body", f.Bodies("POST", "/libdrives/"+csfake.LibDrive+"/action/")[0], `{"name": "occopus-infra-1-n1"}`)
			jsonEq(t, "create body", f.Bodies("POST", csfake.Prefix+"/servers/")[0],
				strings.NewReplacer("CLONE", clone, "DATA", data).Replace(tc.want))
			srv := f.Servers()
			if len(srv) != 1 || srv[0].UUID != hd.ID || srv[0].UserData != userData {
				t.Fatalf("servers %+v, want one whose cloud-init decodes to the render %q", srv, userData)
			}
			if d := parseData(hd); d.Drive != clone || d.NodeID != "n1" || d.InfraID != "infra-1" {
				t.Errorf("handle data %+v", d)
			}

			n := len(f.Requests())
			if err := h.Destroy(t.Context(), hd); err != nil {
				t.Fatal(err)
			}
			wantDestroy := append([]string{
				"GET /servers/" + hd.ID + "/", // running
				"POST /servers/" + hd.ID + "/action/?do=stop",
				"GET /servers/" + hd.ID + "/", // stopping
				"GET /servers/" + hd.ID + "/", // stopped
			}, tc.wantDelete...)
			for i := range wantDestroy {
				wantDestroy[i] = strings.NewReplacer("SERVER", hd.ID, "CLONE", clone).Replace(wantDestroy[i])
			}
			if got := requestLines(f)[n:]; !reflect.DeepEqual(got, wantDestroy) {
				t.Errorf("destroy requests:\n got %q\nwant %q", got, wantDestroy)
			}
			if len(f.Servers()) != 0 {
				t.Errorf("servers left: %+v", f.Servers())
			}
			left := f.Drives()
			if tc.dataDrive && (len(left) != 1 || left[0].UUID != data) {
				t.Errorf("drives left %+v, want the user's data drive alone", left)
			}
			if !tc.dataDrive && len(left) != 0 {
				t.Errorf("drives left %+v", left)
			}
		})
	}
}

// The server object Create sends, and what it refuses before any call.
func TestServerObject(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	descrWith := func(kv map[string]any) map[string]any {
		return with(baseResource(f), map[string]any{"description": with(tutorialDescription(), kv)})
	}
	cases := []struct {
		name     string
		res      map[string]any
		userData string
		want     string // JSON of keys of the object; "" when an error is wanted
		wantErr  []string
	}{
		{"user drives stay as given (the boot drive is added at create)", descrWith(map[string]any{"drives": []any{map[string]any{"dev_channel": "0:1", "drive": "x"}}}), userData,
			`{"drives": [{"dev_channel": "0:1", "drive": "x"}], "cpu": 2000, "vnc_password": "vnc-SECRET-pw"}`, nil},
		{"no cloud-init: no base64 fields", baseResource(f), "",
			`{"meta": {"occopus_infra_id": "infra-1", "occopus_node_id": "n1", "occopus_node_name": "web"}}`, nil},
		{"numbers stay exact", descrWith(map[string]any{"mem": int64(1) << 40, "smp": 4}), userData, `{"mem": 1099511627776, "smp": 4}`, nil},
		{"a user drive on dev_channel 0:0", descrWith(map[string]any{"drives": []any{map[string]any{"dev_channel": "0:0", "drive": "x"}}}), userData,
			"", []string{"node n1", "description.drives[0]", "0:0"}},
		{"a user drive booting first", descrWith(map[string]any{"drives": []any{map[string]any{"boot_order": 1, "drive": "x"}}}), userData,
			"", []string{"node n1", "description.drives[0]", "boot_order 1"}},
		{"meta that is no mapping", descrWith(map[string]any{"meta": "x"}), userData, "", []string{"node n1", "description.meta must be a mapping"}},
		{"drives that are no list", descrWith(map[string]any{"drives": map[string]any{"a": 1}}), userData, "", []string{"node n1", "description.drives must be a list"}},
		{"no libdrive_id", with(baseResource(f), map[string]any{"libdrive_id": nil}), userData, "", []string{"node n1", "libdrive_id"}},
		{"no cpu", descrWith(map[string]any{"cpu": nil}), userData, "", []string{"node n1", `"cpu"`}},
		{"mem not a number", descrWith(map[string]any{"mem": "lots"}), userData, "", []string{"node n1", "description.mem", "integer"}},
		{"cloud-init too large", baseResource(f), strings.Repeat("x", maxUserData+1), "", []string{"node n1", "cloud-init", "bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec(tc.res, "n1")
			spec.Context.UserData = tc.userData
			_, obj, err := h.settings(spec)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			for k, w := range want {
				got, _ := json.Marshal(obj[k])
				jsonEq(t, k, got, string(w))
			}
		})
	}
	// The store's id goes into meta; one the description claims does not.
	for _, store := range []string{"5a1e0c2d-0000-4000-8000-000000000001", ""} {
		spec := newSpec(descrWith(map[string]any{"meta": map[string]any{MetaStoreID: "claimed", "a": "b"}}), "n1")
		spec.StoreID = store
		_, obj, err := h.settings(spec)
		if err != nil {
			t.Fatal(err)
		}
		meta, _ := obj["meta"].(map[string]any)
		if got, ok := meta[MetaStoreID]; (store == "" && ok) || (store != "" && got != store) || meta["a"] != "b" {
			t.Errorf("store id %q: meta %v", store, meta)
		}
	}
	// The spec's section is not touched by the merges.
	res := descrWith(map[string]any{"meta": map[string]any{"a": "b"}})
	before, _ := json.Marshal(res)
	if _, _, err := h.settings(newSpec(res, "n1")); err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(res); !bytes.Equal(before, after) {
		t.Errorf("settings changed the spec's section:\n%s\n%s", before, after)
	}
	if len(f.Requests()) != 0 {
		t.Errorf("settings called the API: %q", requestLines(f))
	}
}

// countAction counts POST .../action/?do=NAME requests.
func countAction(f *csfake.Server, do string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/action/") && r.Query == "do="+do {
			n++
		}
	}
	return n
}

// One clone and one server, whatever happened to the answers.
func TestCreateIdempotentAcrossRetries(t *testing.T) {
	cases := []struct {
		name                    string
		fault                   *csfake.Fault
		clones, creates, starts int // requests expected
	}{
		{"clone answer lost", &csfake.Fault{Method: "POST", Path: "/libdrives/" + csfake.LibDrive + "/action/", Reset: true, After: true}, 1, 1, 1},
		{"clone refused with 503", &csfake.Fault{Method: "POST", Path: "/action/", Query: "do=clone", Status: 503}, 2, 1, 1},
		{"connection reset before the clone", &csfake.Fault{Method: "POST", Path: "/action/", Query: "do=clone", Reset: true}, 2, 1, 1},
		{"server create answer lost", &csfake.Fault{Method: "POST", Path: csfake.Prefix + "/servers/", Reset: true, After: true}, 1, 1, 1},
		{"server create answer lost twice", &csfake.Fault{Method: "POST", Path: csfake.Prefix + "/servers/", Reset: true, After: true, Times: 2}, 1, 1, 1},
		{"server create 503 twice", &csfake.Fault{Method: "POST", Path: csfake.Prefix + "/servers/", Status: 503, Times: 2}, 1, 3, 1},
		{"server create 429", &csfake.Fault{Method: "POST", Path: csfake.Prefix + "/servers/", Status: 429}, 1, 2, 1},
		{"start answer lost", &csfake.Fault{Method: "POST", Path: "/action/", Query: "do=start", Reset: true, After: true}, 1, 1, 1},
		{"start 502", &csfake.Fault{Method: "POST", Path: "/action/", Query: "do=start", Status: 502}, 1, 1, 2},
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
			if srv := f.Servers(); len(srv) != 1 || srv[0].UUID != hd.ID || srv[0].Status == "stopped" {
				t.Fatalf("servers %+v, handle %s: want the one server, started", srv, hd.ID)
			}
			if d := f.Drives(); len(d) != 1 {
				t.Fatalf("drives %+v, want the one clone", d)
			}
			if n := countAction(f, "clone"); n != tc.clones {
				t.Errorf("%d clone requests, want %d", n, tc.clones)
			}
			if n := f.Count("POST", csfake.Prefix+"/servers/"); n != tc.creates {
				t.Errorf("%d create requests, want %d", n, tc.creates)
			}
			if n := countAction(f, "start"); n != tc.starts {
				t.Errorf("%d start requests, want %d", n, tc.starts)
			}
			// A second Create (the engine retrying after a crash) adopts it.
			again, err := newTest(t, f).Create(t.Context(), newSpec(res, "n1"))
			if err != nil || again.ID != hd.ID || len(f.Servers()) != 1 || len(f.Drives()) != 1 {
				t.Fatalf("second Create = %s, %v; servers %d drives %d", again.ID, err, len(f.Servers()), len(f.Drives()))
			}
			if err := h.Destroy(t.Context(), hd); err != nil {
				t.Fatal(err)
			}
			leftovers(t, f)
		})
	}
}

func TestRecoversFromTransientErrors(t *testing.T) {
	// Each op injects the case's fault (through inject, which marks where
	// counting starts) after any set-up of its own.
	type op func(t *testing.T, h *Handler, f *csfake.Server, inject func(id string))
	create := func(t *testing.T, h *Handler, f *csfake.Server, inject func(string)) {
		inject("")
		if _, err := h.Create(t.Context(), newSpec(baseResource(f), "n1")); err != nil {
			t.Fatal(err)
		}
		if n := len(f.Servers()); n != 1 {
			t.Fatalf("%d servers, want 1", n)
		}
	}
	destroy := func(t *testing.T, h *Handler, f *csfake.Server, inject func(string)) {
		hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
		if err != nil {
			t.Fatal(err)
		}
		inject(hd.ID)
		if err := h.Destroy(t.Context(), hd); err != nil {
			t.Fatal(err)
		}
		leftovers(t, f)
	}
	state := func(t *testing.T, h *Handler, f *csfake.Server, inject func(string)) {
		hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
		if err != nil {
			t.Fatal(err)
		}
		inject(hd.ID)
		if st, err := h.State(t.Context(), hd); err != nil || st != resource.StateRunning {
			t.Fatalf("State = %s, %v; want running", st, err)
		}
	}
	cases := []struct {
		name  string
		fault csfake.Fault // Path: SERVER is the server's uuid
		op    op
		want  int // requests matching the fault from the injection on
	}{
		{"503 twice on the server listing", csfake.Fault{Method: "GET", Path: "/servers/detail/", Status: 503, Times: 2}, create, 3},
		{"429 on the clone's status", csfake.Fault{Method: "GET", Contains: "/drives/", Status: 429}, create, 3},
		{"a proxy's 502 page (not JSON)", csfake.Fault{Method: "GET", Contains: "/drives/", Status: 502, Body: "<html>Bad Gateway</html>"}, create, 3},
		{"reset on the stop action", csfake.Fault{Method: "POST", Path: "/action/", Query: "do=stop", Reset: true}, destroy, 2},
		{"stop answer lost", csfake.Fault{Method: "POST", Path: "/action/", Query: "do=stop", Reset: true, After: true}, destroy, 1},
		{"504 on delete", csfake.Fault{Method: "DELETE", Contains: "/servers/", Status: 504}, destroy, 2},
		{"delete answer lost", csfake.Fault{Method: "DELETE", Contains: "/servers/", Reset: true, After: true}, destroy, 2},
		{"500 twice on state", csfake.Fault{Method: "GET", Path: "/servers/SERVER/", Status: 500, Times: 2}, state, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			h := newTest(t, f)
			mark := 0
			fault := tc.fault
			tc.op(t, h, f, func(id string) {
				fault.Path = strings.ReplaceAll(fault.Path, "SERVER", id)
				mark = len(f.Requests())
				f.Inject(&fault)
			})
			n := 0
			for _, r := range f.Requests()[mark:] {
				if r.Method == fault.Method && strings.HasSuffix(r.Path, fault.Path) && strings.Contains(r.Path, fault.Contains) && strings.Contains(r.Query, fault.Query) {
					n++
				}
			}
			if n != tc.want {
				t.Errorf("%d %s %s?%s requests, want %d", n, fault.Method, fault.Path, fault.Query, tc.want)
			}
		})
	}
}

// Failures that are the provider's final word are not retried, name the
// node, the request and CloudSigma's message, and leave nothing behind.
func TestPermanentErrors(t *testing.T) {
	cases := []struct {
		name   string
		res    func(f *csfake.Server) map[string]any
		auth   map[string]any
		faults []*csfake.Fault
		wantIn []string
		// once is a request (method, path suffix, query) made exactly once.
		once [3]string
	}{
		{"unknown library drive",
			func(f *csfake.Server) map[string]any {
				return with(baseResource(f), map[string]any{"libdrive_id": "replace_with_id_of_your_library_drive_on_your_target_cloud"})
			}, nil, nil,
			[]string{"cloudsigma: clone library drive replace_with_id", "for node n1", "POST ", "/libdrives/replace_with_id_of_your_library_drive_on_your_target_cloud/action/?do=clone",
				"notexist: Object with uuid replace_with", "HTTP 404"},
			[3]string{"POST", "/action/", "do=clone"}},
		{"the server is refused: the clone is deleted", nil, nil,
			[]*csfake.Fault{{Method: "POST", Path: csfake.Prefix + "/servers/", Status: 400,
				Body: `[{"error_point": "cpu", "error_type": "validation", "error_message": "Ensure this value is less than or equal to 40000."}]`}},
			[]string{"create server for node n1", "POST ", "/api/2.0/servers/", "validation: Ensure this value is less than or equal to 40000. (cpu)", "HTTP 400"},
			[3]string{"POST", csfake.Prefix + "/servers/", ""}},
		{"the start is refused for good: the server and its clone are deleted", nil, nil,
			[]*csfake.Fault{{Method: "POST", Path: "/action/", Query: "do=start", Status: 402, Times: 10,
				Body: `[{"error_point": null, "error_type": "billing", "error_message": "Insufficient funds."}]`}},
			[]string{"start server", "for node n1", "billing: Insufficient funds.", "HTTP 402"},
			[3]string{}},
		{"wrong password", nil, map[string]any{"email": "user@example.com", "password": "wrong-SECRET-guess"}, nil,
			[]string{"find server for node n1", "GET ", "/servers/detail/", "permission: Authentication failed.", "HTTP 401"},
			[3]string{"GET", "/servers/detail/", "limit=100&offset=0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.Inject(tc.faults...)
			res := baseResource(f)
			if tc.res != nil {
				res = tc.res(f)
			}
			opts := []testOpt{withResource(res)}
			if tc.auth != nil {
				opts = append(opts, withAuth(tc.auth))
			}
			h := newTest(t, f, opts...)
			_, err := h.Create(t.Context(), newSpec(res, "n1"))
			if err == nil {
				t.Fatal("Create succeeded")
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var ce *cloudapi.Error
			if !errors.As(err, &ce) || ce.Provider != "cloudsigma" || ce.Node != "n1" {
				t.Errorf("error %#v is not a cloudapi.Error for node n1", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows a secret: %v", err)
			}
			if tc.once[0] != "" {
				n := 0
				for _, r := range f.Requests() {
					if r.Method == tc.once[0] && strings.HasSuffix(r.Path, tc.once[1]) && r.Query == tc.once[2] {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%d %s %s?%s requests, want 1 (permanent errors are not retried)", n, tc.once[0], tc.once[1], tc.once[2])
				}
			}
			leftovers(t, f)
		})
	}
}

// Waits are bounded; a clone that does not get ready is removed.
func TestWaitsAreBounded(t *testing.T) {
	cases := []struct {
		name    string
		opts    csfake.Options
		status  string // forced clone status ("" keeps the fake's)
		wantIn  []string
		wantErr error
	}{
		{"the clone never finishes", csfake.Options{ClonePolls: 1 << 30}, "", []string{"node n1", "waiting for clone", `"cloning_dst"`}, context.DeadlineExceeded},
		{"the clone becomes unavailable", csfake.Options{ClonePolls: 1 << 30}, "unavailable", []string{"node n1", "is unavailable instead of unmounted"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.opts)
			h := newTest(t, f)
			h.waitLimit = 50 * time.Millisecond
			if tc.status != "" {
				// The clone goes bad while Create waits for it.
				h.sleep = func(ctx context.Context, d time.Duration) error {
					for _, d := range f.Drives() {
						f.SetDriveStatus(d.UUID, tc.status)
					}
					return nil
				}
			}
			start := time.Now()
			_, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("Create took %s", time.Since(start))
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			leftovers(t, f)
		})
	}
}

func TestState(t *testing.T) {
	cases := []struct {
		status string
		want   resource.State
	}{
		{"running", resource.StateRunning},
		{"starting", resource.StatePending},
		{"paused", resource.StatePending},
		{"stopping", resource.StateShutdown},
		{"stopped", resource.StateShutdown},
		{"unavailable", resource.StateFailed},
		{"unknown", resource.StateUnknown},
		{"migrating", resource.StateUnknown},
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

func TestAddresses(t *testing.T) {
	cases := []struct {
		name string
		srv  server
		want resource.Addresses
	}{
		{"server runtime: public and private", server{Runtime: &struct {
			NICs []runtimeNIC `json:"nics"`
		}{NICs: []runtimeNIC{{InterfaceType: "private", IPv4: &ref{UUID: "10.0.0.5"}}, {InterfaceType: "public", IPv4: &ref{UUID: "178.22.70.33"}}}}},
			resource.Addresses{Public: "178.22.70.33", Private: "10.0.0.5"}},
		{"only a public NIC", server{Runtime: &struct {
			NICs []runtimeNIC `json:"nics"`
		}{NICs: []runtimeNIC{{InterfaceType: "public", IPv4: &ref{UUID: "178.22.70.33"}}, {InterfaceType: "private"}}}},
			resource.Addresses{Public: "178.22.70.33", Private: "178.22.70.33"}},
		{"the NICs' own runtime", server{NICs: []serverNIC{{Runtime: &runtimeNIC{InterfaceType: "public", IPv4: &ref{UUID: "185.12.5.9"}}}}},
			resource.Addresses{Public: "185.12.5.9", Private: "185.12.5.9"}},
		{"stopped: none", server{}, resource.Addresses{}},
	}
	for _, tc := range cases {
		if got := addressesOf(tc.srv); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	f := newFake(t)
	h := newTest(t, f)
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // starting → running
		_, _ = h.State(t.Context(), hd)
	}
	a, err := h.Addresses(t.Context(), hd)
	if err != nil || a.Public != f.Servers()[0].IP || !strings.HasPrefix(a.Public, "127.") {
		t.Errorf("Addresses = %+v, %v; want the fake's loopback address %s", a, err, f.Servers()[0].IP)
	}
}

// A clone whose server was never made (its cleanup failed too) is found,
// seen shut down, and removed.
func TestOrphanClone(t *testing.T) {
	f := newFake(t)
	f.Inject(
		&csfake.Fault{Method: "POST", Path: csfake.Prefix + "/servers/", Status: 400, Body: `[{"error_type": "validation", "error_message": "bad nics"}]`},
		&csfake.Fault{Method: "DELETE", Contains: "/drives/", Status: 503, Times: 6},
	)
	h := newTest(t, f)
	if _, err := h.Create(t.Context(), newSpec(baseResource(f), "n1")); err == nil || !strings.Contains(err.Error(), "bad nics") {
		t.Fatalf("Create: %v, want the refusal", err)
	}
	drives := f.Drives()
	if len(drives) != 1 || len(f.Servers()) != 0 {
		t.Fatalf("drives %+v servers %+v: want the clone alone", drives, f.Servers())
	}
	got, err := h.List(t.Context(), "infra-1")
	if err != nil || len(got) != 1 || got[0].Handle.ID != drives[0].UUID || got[0].NodeID != "n1" || got[0].InfraID != "infra-1" {
		t.Fatalf("List = %+v, %v; want the clone for n1", got, err)
	}
	if other, err := h.List(t.Context(), "infra-2"); err != nil || len(other) != 0 {
		t.Errorf("List of another infrastructure = %+v, %v", other, err)
	}
	hd, found, err := h.Find(t.Context(), "infra-1", "n1")
	if err != nil || !found || hd.ID != drives[0].UUID {
		t.Fatalf("Find = %+v %v %v, want the clone", hd, found, err)
	}
	if st, err := h.State(t.Context(), hd); err != nil || st != resource.StateShutdown {
		t.Errorf("State of the clone = %s, %v; want shutdown", st, err)
	}
	if _, err := h.Addresses(t.Context(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Addresses of the clone: %v, want ErrNotFound", err)
	}
	if err := h.Destroy(t.Context(), got[0].Handle); err != nil {
		t.Fatal(err)
	}
	leftovers(t, f)
	if _, err := h.State(t.Context(), hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State of the deleted clone: %v, want ErrNotFound", err)
	}
}

func TestListAndFindByMeta(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
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
	if d := parseData(got[0].Handle); d.Drive != parseData(a).Drive {
		t.Errorf("listed handle data %+v, want the clone %s", d, parseData(a).Drive)
	}
	if hd, found, err := h.Find(t.Context(), "infra-2", "n1"); err != nil || !found || hd.ID != c.ID {
		t.Fatalf("Find = %v %v %v, want %s", hd, found, err, c.ID)
	}
	// A handle without data (an old record) is destroyed with its clone.
	if err := h.Destroy(t.Context(), resource.Handle{ID: c.ID}); err != nil {
		t.Fatal(err)
	}
	if len(f.Servers()) != 2 || len(f.Drives()) != 2 {
		t.Errorf("after destroying c: servers %d drives %d, want 2 and 2", len(f.Servers()), len(f.Drives()))
	}
}

// ListAll finds the servers of every infrastructure with the store id in
// their meta, and the clones no server uses named for a node of an
// infrastructure whose id is a UUID (as the engine's are); a clone carries
// no store id.
func TestListAll(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	res := baseResource(f)
	ours, other, old := newSpec(res, "n1"), newSpec(res, "n2"), newSpec(res, "n3")
	ours.InfraID, ours.StoreID = "0a0a0a0a-0000-4000-8000-000000000001", "store-a"
	other.InfraID, other.StoreID = "0a0a0a0a-0000-4000-8000-000000000002", "store-b"
	hds := map[string]resource.Handle{}
	for name, s := range map[string]resource.Spec{"ours": ours, "other": other, "old": old} {
		hd, err := h.Create(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		hds[name] = hd
	}
	const lostInfra = "0a0a0a0a-0000-4000-8000-000000000009"
	clone := f.AddDrive(cloneName(lostInfra, "n9"))
	f.AddDrive("occopus-not-a-uuid-n8")
	f.AddDrive("ubuntu-22.04")
	got, err := h.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ id, infra, node, name, store string }
	var rows []row
	for _, o := range got {
		rows = append(rows, row{o.Handle.ID, o.InfraID, o.NodeID, o.NodeName, o.StoreID})
	}
	want := []row{
		{hds["ours"].ID, ours.InfraID, "n1", "web", "store-a"},
		{hds["other"].ID, other.InfraID, "n2", "web", "store-b"},
		{clone, lostInfra, "n9", "", ""},
		{hds["old"].ID, "infra-1", "n3", "web", ""},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("ListAll = %+v\nwant %+v", rows, want)
	}
	// The clone's handle is enough to delete it.
	if err := h.Destroy(t.Context(), got[2].Handle); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Drives() {
		if d.UUID == clone {
			t.Errorf("clone %s still there after Destroy", clone)
		}
	}
}

// Listings read every page, and no more than maxPages.
func TestListingPages(t *testing.T) {
	f := newFake(t)
	for i := range pageSize + 5 {
		f.AddDrive(fmt.Sprintf("d%d", i))
	}
	h := newTest(t, f)
	if _, found, err := h.Find(t.Context(), "infra-1", "n1"); err != nil || found {
		t.Fatalf("Find = %v %v", found, err)
	}
	var pages []string
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/drives/detail/") {
			pages = append(pages, r.Query)
		}
	}
	if want := []string{"limit=100&offset=0", "limit=100&offset=100"}; !reflect.DeepEqual(pages, want) {
		t.Errorf("drive listing pages %q, want %q", pages, want)
	}
}

func TestConformance(t *testing.T) {
	f := newFake(t)
	h := newTest(t, f)
	var n atomic.Int64
	resourcetest.Run(t, h, func(t *testing.T) resource.Spec {
		i := n.Add(1)
		return resource.Spec{
			InfraID: fmt.Sprintf("infra-%d", i), NodeID: fmt.Sprintf("node-%d", i), NodeName: "web",
			Resource: baseResource(f), Context: resource.Context{UserData: userData},
		}
	}, resourcetest.WithTimeout(5*time.Second), resourcetest.WithKill(func(t *testing.T, hd resource.Handle) { f.Kill(hd.ID) }))
	t.Cleanup(func() { leftovers(t, f) })
}

// Secrets stay out of errors and logs, even when the cloud quotes them.
func TestSecretsNeverShown(t *testing.T) {
	f := newFake(t)
	f.SetEchoSecrets(true)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const wrong = "not-the-pw-SECRET-1"
	f.Inject(&csfake.Fault{Method: "GET", Path: "/servers/detail/", Status: 503}) // a retry, logged
	h := newTest(t, f, withLogger(log), withAuth(map[string]any{"email": f.Email(), "password": wrong}))
	_, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
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
	// The VNC password is scrubbed too (the create request carries it).
	f2 := newFake(t)
	f2.Inject(&csfake.Fault{Method: "POST", Path: csfake.Prefix + "/servers/", Status: 400,
		Body: `[{"error_type": "validation", "error_message": "vnc_password vnc-SECRET-pw is too weak"}]`})
	_, err = newTest(t, f2).Create(t.Context(), newSpec(baseResource(f2), "n1"))
	if err == nil || strings.Contains(err.Error(), "vnc-SECRET-pw") || !strings.Contains(err.Error(), "too weak") {
		t.Errorf("error %v: want the message without the VNC password", err)
	}
}

func TestNoCredentialsOrEndpoint(t *testing.T) {
	res := map[string]any{"type": "cloudsigma", "endpoint": "https://zrh.cloudsigma.com/api/2.0/", "libdrive_id": "x",
		"description": map[string]any{"cpu": 1000, "mem": 512, "vnc_password": "v"}}
	cases := []struct {
		name string
		res  map[string]any
		auth map[string]any
		want []string
	}{
		{"no auth_data entry", res, nil, []string{"no credentials", "https://zrh.cloudsigma.com/api/2.0", "email and password"}},
		{"no password", res, map[string]any{"email": "a@b.c"}, []string{"lack password"}},
		{"no email", res, map[string]any{"password": "p"}, []string{"lack email"}},
		{"the tutorial's placeholder endpoint", with(res, map[string]any{"endpoint": "replace_with_endpoint_of_cloudsigma_interface_of_your_cloud"}),
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
	h, err := newHandler(resource.Config{Resource: res, Auth: map[string]any{"email": "a", "password": "b"}})
	if err != nil || h.endpoint != "https://zrh.cloudsigma.com/api/2.0" {
		t.Errorf("New = %v; endpoint %q, want the trailing slash dropped", err, h.endpoint)
	}
}

// Every HTTP request waits in the Config.Limiter, keyed by host.
func TestEveryRequestWaitsInTheLimiter(t *testing.T) {
	f := newFake(t)
	lim := &countingLimiter{}
	h := newTest(t, f, withLimiter(lim))
	hd, err := h.Create(t.Context(), newSpec(baseResource(f), "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(f.URL(), csfake.Prefix)
	if got, want := lim.waits(), map[string]int{host: len(f.Requests())}; !reflect.DeepEqual(got, want) {
		t.Errorf("waits per endpoint = %v, want %v (every request)", got, want)
	}
}

func TestContextEndsRetries(t *testing.T) {
	f := newFake(t)
	f.Inject(&csfake.Fault{Method: "GET", Path: "/servers/detail/", Status: 503, Times: 1000})
	h := newTest(t, f)
	h.cloud.Policy = cloudapi.Policy{Attempts: 1000, Base: time.Hour}
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
