package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	_ "github.com/occopus-go/occopus/plugins/standard"
	"github.com/occopus-go/occopus/rest"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/sqlite"
)

// nodeDefs are local processes: no Docker, no cloud.
const nodeDefs = `
'node_def:rest_worker':
  - resource:
      type: local
      stop_timeout: 1
    contextualisation:
      type: docker
      command: ["sleep", "3600"]
    health_check:
      ping: false
`

const infraYAML = `infra_name: rest-test
nodes:
  - name: worker
    type: rest_worker
    scaling: {min: 1, max: 4}
  - name: helper
    type: rest_worker
`

// fixture is a store in a temporary $OCCOPUS_HOME with the node
// definitions imported.
type fixture struct {
	home string
	st   store.Store
	logs *syncBuffer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	home := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(home, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{home: home, st: st, logs: &syncBuffer{}}
	importDefs(t, st, nodeDefs)
	t.Cleanup(func() {
		// Destroy whatever a test left, so no process outlives it.
		m, err := occopus.New(occopus.Options{Store: st, Home: home})
		if err == nil {
			infras, _ := m.List(context.Background())
			for _, inf := range infras {
				m.TearDown(context.Background(), inf.ID)
			}
			m.Close()
		}
		st.Close()
	})
	return f
}

// serverConfig is what a test may change of a server: the REST
// configuration and the options of the Manager under it.
type serverConfig struct {
	rest.Config
	Manager occopus.Options
}

// testServer is a Server with the Manager made for it; Close closes both,
// as stopping the rest-service process does.
type testServer struct {
	*rest.Server
	m *occopus.Manager
}

func (s *testServer) Close() error {
	s.Server.Close()
	return s.m.Close()
}

// newServer builds a Manager and a Server over it; both are closed when
// the test ends.
func newServer(t testing.TB, cfg serverConfig) (*testServer, error) {
	t.Helper()
	m, err := occopus.New(cfg.Manager)
	if err != nil {
		return nil, err
	}
	srv, err := rest.New(m, cfg.Config)
	if err != nil {
		m.Close()
		return nil, err
	}
	ts := &testServer{Server: srv, m: m}
	t.Cleanup(func() { ts.Close() })
	return ts, nil
}

// server starts a Server on the fixture's store behind httptest.
func (f *fixture) server(t testing.TB, mod func(*serverConfig)) (*testServer, *httptest.Server) {
	t.Helper()
	cfg := serverConfig{Manager: srv1Options(f)}
	cfg.Log = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(&cfg)
	}
	if cfg.Secrets != nil {
		cfg.Log = slog.New(auth.RedactHandler(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}), cfg.Secrets))
		cfg.Manager.Log = cfg.Log
	}
	srv, err := newServer(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs
}

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

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

func call(t testing.TB, method, url, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1] // the client sends req.Host, not the header
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// expect checks the status; for errors, the JSON error shape too.
func expect(t testing.TB, r response, code int) map[string]any {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	v := r.json(t)
	if code >= 400 {
		if v["status_code"] != float64(code) || v["reason"] != http.StatusText(code) || v["message"] == "" {
			t.Fatalf("error body %s", r.body)
		}
	}
	return v
}

func create(t testing.TB, base, yaml string) string {
	t.Helper()
	v := expect(t, call(t, "POST", base+"/infrastructures/", yaml), 200)
	id, _ := v["infraid"].(string)
	if id == "" || len(v) != 1 {
		t.Fatalf("create: %v", v)
	}
	return id
}

type report map[string]struct {
	Instances map[string]struct {
		ResourceAddress string `json:"resource_address"`
		State           string `json:"state"`
	} `json:"instances"`
	Scaling struct{ Actual, Target, Min, Max int } `json:"scaling"`
}

func getReport(t testing.TB, base, id string, hdr ...string) report {
	t.Helper()
	r := call(t, "GET", base+"/infrastructures/"+id, "", hdr...)
	expect(t, r, 200)
	var rep report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// ready counts the ready instances of a node.
func (rep report) ready(node string) int {
	n := 0
	for _, in := range rep[node].Instances {
		if in.State == store.StateReady {
			n++
		}
	}
	return n
}

// waitFor polls the report until cond holds.
func waitFor(t testing.TB, base, id, what string, cond func(report) bool) report {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep := getReport(t, base, id)
		if cond(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procsOf lists the pids of processes carrying the infra id.
func procsOf(infraID string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == "OCCOPUS_INFRA_ID="+infraID {
				pids = append(pids, filepath.Base(d))
			}
		}
	}
	return pids
}

// srv1Options are the Manager options the fixture's servers use.
func srv1Options(f *fixture) occopus.Options {
	return occopus.Options{Store: f.st, Home: f.home, Interval: 100 * time.Millisecond, Parallelize: true}
}
