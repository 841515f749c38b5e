package rest_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/rest"
)

const unknownID = "00000000-0000-4000-8000-000000000000"

// submitted stores an infrastructure without maintaining it (no process
// starts), for the endpoints that only record requests.
func submitted(t *testing.T, srv *testServer) string {
	t.Helper()
	in, err := descr.ParseInfra("infra.yaml", []byte(infraYAML), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := srv.Manager().Submit(context.Background(), in, "")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	srv, hs := f.server(t, nil)

	t.Run("ok", func(t *testing.T) {
		id := create(t, hs.URL, infraYAML)
		if !srv.Manager().Attached(id) {
			t.Fatal("a created infrastructure is maintained")
		}
	})
	t.Run("no trailing slash", func(t *testing.T) {
		v := expect(t, call(t, "POST", hs.URL+"/infrastructures", infraYAML), 200)
		if v["infraid"] == "" {
			t.Fatal(v)
		}
	})
	t.Run("invalid description names request:line", func(t *testing.T) {
		bad := "infra_name: x\nnodes:\n  - name: a\n    type: rest_worker\n    scaling: {min: 3, max: 1}\ndependences: []\n"
		v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", bad), 400)
		msg := v["message"].(string)
		if !regexp.MustCompile(`(?m)^request:6:1: dependences: unknown key`).MatchString(msg) {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("unknown node type", func(t *testing.T) {
		v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", "infra_name: x\nnodes:\n  - name: a\n    type: nosuch\n"), 400)
		if !strings.HasPrefix(v["message"].(string), "request:4:11: ") {
			t.Fatalf("message %q", v["message"])
		}
	})
	t.Run("not YAML", func(t *testing.T) {
		v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", "nodes: [\n"), 400)
		if !strings.HasPrefix(v["message"].(string), "request:") {
			t.Fatalf("message %q", v["message"])
		}
	})
	t.Run("file imports refused", func(t *testing.T) {
		v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", "infra_name: x\nnodes: !yaml_import\n  url: file:///etc/passwd\n"), 400)
		if !strings.Contains(v["message"].(string), "request:2:") {
			t.Fatalf("message %q", v["message"])
		}
	})
	t.Run("empty", func(t *testing.T) {
		expect(t, call(t, "POST", hs.URL+"/infrastructures/", ""), 400)
	})
	t.Run("too large", func(t *testing.T) {
		big := "infra_name: x\n# " + strings.Repeat("x", rest.DefaultMaxBodyBytes) + "\n"
		expect(t, call(t, "POST", hs.URL+"/infrastructures/", big), 413)
	})
	t.Run("method not allowed", func(t *testing.T) {
		r := call(t, "PUT", hs.URL+"/infrastructures/", infraYAML)
		expect(t, r, 405)
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "GET") {
			t.Fatalf("Allow %q", allow)
		}
	})
}

func TestListGetDelete(t *testing.T) {
	f := newFixture(t)
	srv, hs := f.server(t, nil)
	a, b := submitted(t, srv), submitted(t, srv)

	v := expect(t, call(t, "GET", hs.URL+"/infrastructures/", ""), 200)
	ids, _ := v["infrastructures"].([]any)
	if len(v) != 1 || len(ids) != 2 || ids[0] != a || ids[1] != b {
		t.Fatalf("list %v", v)
	}
	expect(t, call(t, "GET", hs.URL+"/infrastructures", ""), 200)

	rep := getReport(t, hs.URL, a)
	if len(rep) != 2 || rep["worker"].Scaling.Min != 1 || rep["worker"].Scaling.Max != 4 ||
		rep["worker"].Scaling.Target != 1 || rep["worker"].Instances == nil || rep["helper"].Scaling.Max != 1 {
		t.Fatalf("report %+v", rep)
	}
	raw := call(t, "GET", hs.URL+"/infrastructures/"+a, "").json(t)
	node := raw["worker"].(map[string]any)
	sc := node["scaling"].(map[string]any)
	for _, k := range []string{"actual", "target", "min", "max"} {
		if _, ok := sc[k]; !ok {
			t.Fatalf("scaling lacks %s: %v", k, sc)
		}
	}
	if _, ok := node["instances"].(map[string]any); !ok {
		t.Fatalf("instances: %v", node)
	}

	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+unknownID, ""), 404)
	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+a+"/nosuch", ""), 404)
	expect(t, call(t, "PATCH", hs.URL+"/infrastructures/"+a, ""), 405)

	v = expect(t, call(t, "DELETE", hs.URL+"/infrastructures/"+a, ""), 200)
	if v["infraid"] != a || len(v) != 1 {
		t.Fatalf("delete %v", v)
	}
	expect(t, call(t, "DELETE", hs.URL+"/infrastructures/"+a, ""), 404)
	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+a, ""), 404)
}

func TestScaleEndpoints(t *testing.T) {
	f := newFixture(t)
	srv, hs := f.server(t, nil)
	id := submitted(t, srv)
	u := hs.URL + "/infrastructures/" + id

	v := expect(t, call(t, "POST", u+"/scaleup/worker", ""), 200)
	want := map[string]any{"method": "scaleup", "infraid": id, "nodename": "worker", "count": float64(1), "target": float64(2)}
	if !equalMaps(v, want) {
		t.Fatalf("scaleup %v", v)
	}
	v = expect(t, call(t, "POST", u+"/scaleup/worker/2", ""), 200)
	want["count"], want["target"] = float64(2), float64(4)
	if !equalMaps(v, want) {
		t.Fatalf("scaleup/2 %v", v)
	}
	if got := getReport(t, hs.URL, id)["worker"].Scaling.Target; got != 4 {
		t.Fatalf("target after scaleup 1+2: %d", got)
	}
	expect(t, call(t, "POST", u+"/scaleup/worker/0", ""), 400)
	expect(t, call(t, "POST", u+"/scaleup/worker/x", ""), 400)
	expect(t, call(t, "POST", u+"/scaleup/nosuch", ""), 404)
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+unknownID+"/scaleup/worker", ""), 404)
	expect(t, call(t, "GET", u+"/scaleup/worker", ""), 405)

	v = expect(t, call(t, "POST", u+"/scaledown/worker", ""), 200)
	if !equalMaps(v, map[string]any{"method": "scaledown", "infraid": id, "nodename": "worker", "nodeid": nil}) {
		t.Fatalf("scaledown %v", v)
	}
	if _, present := v["nodeid"]; !present {
		t.Fatal("nodeid must be present (null)")
	}
	expect(t, call(t, "POST", u+"/scaledown/worker/no-such-instance", ""), 404)
	expect(t, call(t, "POST", u+"/scaledown/nosuch", ""), 404)
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+unknownID+"/scaledown/worker", ""), 404)

	v = expect(t, call(t, "POST", u+"/scaleto/worker/2", ""), 200)
	if !equalMaps(v, map[string]any{"method": "scaleto", "infraid": id, "nodename": "worker", "count": float64(2), "target": float64(2)}) {
		t.Fatalf("scaleto %v", v)
	}
	expect(t, call(t, "POST", u+"/scaleto/worker/0", ""), 400)
	expect(t, call(t, "POST", u+"/scaleto/nosuch/2", ""), 404)
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+unknownID+"/scaleto/worker/2", ""), 404)
	expect(t, call(t, "POST", u+"/scaleto/worker", ""), 404) // no such route
}

func TestAttachDetachNotify(t *testing.T) {
	f := newFixture(t)
	srv, hs := f.server(t, nil)
	id := submitted(t, srv)
	u := hs.URL + "/infrastructures/" + id

	for _, op := range []string{"attach", "detach"} {
		v := expect(t, call(t, "POST", u+"/"+op, ""), 200)
		if v["infraid"] != id || len(v) != 1 {
			t.Fatalf("%s %v", op, v)
		}
		expect(t, call(t, "POST", hs.URL+"/infrastructures/"+unknownID+"/"+op, ""), 404)
		expect(t, call(t, "GET", u+"/"+op, ""), 405)
	}
	if srv.Manager().Attached(id) {
		t.Fatal("still attached after detach")
	}

	v := expect(t, call(t, "POST", u+"/notify", `{"webhook": "http://127.0.0.1:1/hook", "team": "a"}`), 200)
	if v["infraid"] != id {
		t.Fatalf("notify %v", v)
	}
	expect(t, call(t, "POST", u+"/notify", `[1, 2]`), 400)
	expect(t, call(t, "POST", u+"/notify", `{"webhook": "file:///etc/passwd"}`), 400)
	expect(t, call(t, "POST", u+"/notify", `{"webhook": 5}`), 400)
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+unknownID+"/notify", `{}`), 404)
	expect(t, call(t, "POST", u+"/notify", `{"x": "`+strings.Repeat("y", rest.DefaultMaxBodyBytes)+`"}`), 413)
}

func TestHealthzOpenAPIMetrics(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	v := expect(t, call(t, "GET", hs.URL+"/healthz", ""), 200)
	if v["status"] != "ok" {
		t.Fatal(v)
	}
	r := call(t, "GET", hs.URL+"/openapi.yaml", "")
	if r.code != 200 || !strings.HasPrefix(string(r.body), "openapi: 3.1") {
		t.Fatalf("openapi: %d %.40s", r.code, r.body)
	}
	expect(t, call(t, "GET", hs.URL+"/nosuch", ""), 404)
	call(t, "GET", hs.URL+"/infrastructures/", "")
	r = call(t, "GET", hs.URL+"/metrics", "")
	for _, name := range []string{"occopus_infrastructures 0", "occopus_instances{state=\"ready\"} 0",
		`occopus_http_requests_total{code="200",route="GET /healthz"} 1`, `occopus_http_requests_total{code="404",route="unmatched"} 1`,
		`occopus_http_requests_total{code="200",route="GET /infrastructures/"} 1`} {
		if !strings.Contains(string(r.body), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
	// Route labels are the documented paths, without the mux's {$}.
	if strings.Contains(string(r.body), "{$}") {
		t.Errorf("a route label holds {$}:\n%s", r.body)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t)
	const token = "s3cret-token-value"
	_, hs := f.server(t, func(c *serverConfig) { c.Token = token })

	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", token}, {"Authorization", "Basic " + token}} {
		for _, p := range []string{"/infrastructures/", "/metrics", "/openapi.yaml", "/infrastructures/" + unknownID, "/nosuch"} {
			r := call(t, "GET", hs.URL+p, "", hdr...)
			v := expect(t, r, 401)
			if strings.Contains(string(r.body), token) {
				t.Fatal("token in response")
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate")
			}
			_ = v
		}
	}
	expect(t, call(t, "POST", hs.URL+"/infrastructures/", infraYAML), 401)
	expect(t, call(t, "GET", hs.URL+"/healthz", ""), 200)
	ok := []string{"Authorization", "Bearer " + token}
	expect(t, call(t, "GET", hs.URL+"/infrastructures/", "", ok...), 200)
	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+unknownID, "", ok...), 404)
	if r := call(t, "GET", hs.URL+"/metrics", "", ok...); r.code != 200 {
		t.Fatal(r.code)
	}
}

func equalMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			return false
		}
	}
	return true
}
