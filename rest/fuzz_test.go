package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/rest"
)

// memBackend is an in-memory resource backend for the fuzzers: created
// instances are map entries, so thousands of builds cost nothing.
type memBackend struct {
	mu sync.Mutex
	m  map[string]bool
}

var mem = &memBackend{m: map[string]bool{}}

type memSettings struct {
	Zone string `occopus:"zone"`
}

func init() {
	resource.Register(resource.Plugin{Type: "rest_fuzz", Schema: descr.SchemaOf[memSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s memSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		switch s.Zone {
		case "unreachable":
			return stuckBackend{mem}, nil
		case "broken":
			return nil, fmt.Errorf("rest_fuzz: zone broken cannot be configured")
		}
		return mem, nil
	}})
}

// stuckBackend creates but cannot destroy: an endpoint gone since.
type stuckBackend struct{ *memBackend }

func (stuckBackend) Destroy(context.Context, resource.Handle) error {
	return fmt.Errorf("endpoint gone")
}

func (b *memBackend) Create(_ context.Context, s resource.Spec) (resource.Handle, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[s.NodeID] = true
	return resource.Handle{ID: s.NodeID}, nil
}

func (b *memBackend) Destroy(_ context.Context, h resource.Handle) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, h.ID)
	return nil
}

func (b *memBackend) State(_ context.Context, h resource.Handle) (resource.State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.m[h.ID] {
		return resource.StateUnknown, resource.ErrNotFound
	}
	return resource.StateRunning, nil
}

func (b *memBackend) Addresses(context.Context, resource.Handle) (resource.Addresses, error) {
	return resource.Addresses{Public: "127.0.0.1", Private: "127.0.0.1"}, nil
}

const fuzzDefs = `'node_def:fz':
  - resource: {type: rest_fuzz}
    health_check: {ping: false}
`

// fuzzServer is a Server over a fresh store with the fz node type.
func fuzzServer(f *testing.F) (http.Handler, *occopus.Manager) {
	fx := newFixture(f)
	importDefs(f, fx.st, fuzzDefs)
	m, err := occopus.New(occopus.Options{Store: fx.st, Home: fx.home, Interval: time.Hour,
		Limits: occopus.Limits{PerNode: 20, PerInfra: 50, Total: 1000}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	srv, err := rest.New(m, rest.Config{MaxDescriptionBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	return srv.Handler(), m
}

// serveFuzz runs one request against h and checks the answer's shape: a
// status the API documents, JSON with the error shape for errors.
func serveFuzz(t *testing.T, h http.Handler, method, path, ctype string, body []byte) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, "http://127.0.0.1:5000"+path, strings.NewReader(string(body)))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusMovedPermanently {
		// The mux's answer to a path that is not clean ("/a/./b"): where
		// the clean one is.
		if rec.Header().Get("Location") == "" {
			t.Fatalf("%s %s: %d without a Location", method, path, rec.Code)
		}
		return rec.Code, nil
	}
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, rec.Code, rec.Body.String())
	}
	switch rec.Code {
	case 200, 400, 404, 405, 409, 413, 415:
	default:
		t.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body.String())
	}
	if rec.Code >= 400 && (v["status_code"] != float64(rec.Code) || v["message"] == "") {
		t.Fatalf("%s %s: error shape %s", method, path, rec.Body.String())
	}
	return rec.Code, v
}

// FuzzCreate: any body POSTed to /infrastructures/ gets an answer (never a
// panic, a hang or a 500), and what is accepted can be torn down.
// Run on purpose: go test -run=^$ -fuzz=FuzzCreate -fuzztime=30m ./rest
func FuzzCreate(f *testing.F) {
	for _, s := range []string{
		"infra_name: x\nnodes:\n  - {name: a, type: fz}\n",
		"infra_name: x\nnodes:\n  - {name: a, type: fz, scaling: {min: 2, max: 3}}\n  - {name: b, type: fz}\ndependencies:\n  - [b, a]\n",
		"infra_name: x\nnodes:\n  - {name: a, type: fz, scaling: {min: 99999999999999999999}}\n",
		"infra_name: x\nnodes:\n  - {name: a, type: fz, scaling: {min: 100000}}\n",
		"infra_name: x\nnodes:\n  - {name: \"a\\0\", type: fz}\n",
		"infra_name: b\nvariables:\n  a: &a xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nnodes:\n  - {name: a, type: fz}\n",
		"infra_name: x\nnodes: [{name: a, type: fz, variables: {v: '{{ cmd(\"id\") }}'}}]\n",
		"{\"infra_name\": \"j\", \"nodes\": [{\"name\": \"a\", \"type\": \"fz\"}]}",
		"- !yaml_import {url: file:///etc/passwd}\n",
		"",
	} {
		f.Add([]byte(s), "application/yaml")
	}
	f.Add([]byte("infra_name: x\nnodes: [{name: a, type: fz}]\n"), "text/plain")
	h, m := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		code, v := serveFuzz(t, h, "POST", "/infrastructures/", ctype, body)
		if code != 200 {
			return
		}
		id, _ := v["infraid"].(string)
		if _, err := m.Get(context.Background(), id); err != nil {
			t.Fatalf("accepted %q but cannot report it: %v", id, err)
		}
		if code, _ := serveFuzz(t, h, "DELETE", "/infrastructures/"+id, "", nil); code != 200 {
			t.Fatalf("cannot delete what was accepted: %d", code)
		}
	})
}

// FuzzScale: any node name and count on the scale endpoints gets an
// answer, and the node's target stays within its limits.
// Run on purpose: go test -run=^$ -fuzz=FuzzScale -fuzztime=30m ./rest
func FuzzScale(f *testing.F) {
	for _, s := range []struct{ op, node, count string }{
		{"scaleup", "a", "1"}, {"scaleup", "a", "9223372036854775807"}, {"scaleup", "a", "-3"},
		{"scaledown", "a", ""}, {"scaledown", "a", "127.0.0.1"}, {"scaleto", "a", "99"},
		{"scaleto", "a", "0"}, {"scaleto", "b%00", "1"}, {"scaleup", "a", "1e3"}, {"nosuch", "a", "1"},
	} {
		f.Add(s.op, s.node, s.count)
	}
	h, m := fuzzServer(f)
	in, err := descr.ParseInfra("s.yaml", []byte("infra_name: s\nnodes:\n  - {name: a, type: fz, scaling: {min: 1, max: 4}}\n"), descr.LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	id, err := m.Add(context.Background(), in)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op, node, count string) {
		path := fmt.Sprintf("/infrastructures/%s/%s/%s", id, op, node)
		if count != "" {
			path += "/" + count
		}
		if strings.ContainsAny(path, " \t\r\n#?") || !strings.HasPrefix(path, "/") {
			return // not a request line a client can send
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return // nor is this (a bad %-escape): the server never sees it
		}
		serveFuzz(t, h, "POST", path, "", nil)
		rep, err := m.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s := rep["a"].Scaling; s.Target < 1 || s.Target > 4 {
			t.Fatalf("after %s: target %d outside [1, 4]", path, s.Target)
		}
	})
}
