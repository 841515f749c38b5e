package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus/rest"
	"github.com/occopus-go/occopus/store"
)

// TestLifecycle drives a local infrastructure entirely over HTTP.
func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, infraYAML)
	u := hs.URL + "/infrastructures/" + id

	rep := waitFor(t, hs.URL, id, "both nodes ready", func(r report) bool { return r.ready("worker") == 1 && r.ready("helper") == 1 })
	if a := rep["worker"]; a.Scaling.Actual != 1 || a.Scaling.Target != 1 {
		t.Fatalf("scaling %+v", a.Scaling)
	}
	for _, in := range rep["worker"].Instances {
		if !strings.HasPrefix(in.ResourceAddress, "127.") {
			t.Fatalf("address %q", in.ResourceAddress)
		}
	}
	if n := len(procsOf(id)); n != 2 {
		t.Fatalf("%d processes, want 2", n)
	}

	expect(t, call(t, "POST", u+"/scaleup/worker", ""), 200)
	rep = waitFor(t, hs.URL, id, "2 workers", func(r report) bool { return r.ready("worker") == 2 })

	var victim string
	for nid := range rep["worker"].Instances {
		victim = nid
	}
	v := expect(t, call(t, "POST", u+"/scaledown/worker/"+victim, ""), 200)
	if v["nodeid"] != victim {
		t.Fatalf("scaledown %v", v)
	}
	waitFor(t, hs.URL, id, "the named instance gone", func(r report) bool {
		_, still := r["worker"].Instances[victim]
		return !still && r.ready("worker") == 1 && len(r["worker"].Instances) == 1
	})

	expect(t, call(t, "POST", u+"/scaleto/worker/3", ""), 200)
	waitFor(t, hs.URL, id, "3 workers", func(r report) bool { return r.ready("worker") == 3 && r["worker"].Scaling.Target == 3 })

	// Detached, a dead instance stays dead; attached again, it is healed.
	expect(t, call(t, "POST", u+"/detach", ""), 200)
	time.Sleep(300 * time.Millisecond) // a pass in flight ends
	pids := procsOf(id)
	if len(pids) != 4 {
		t.Fatalf("%d processes, want 4", len(pids))
	}
	killOne(t, pids)
	time.Sleep(500 * time.Millisecond)
	if got := len(procsOf(id)); got != 3 {
		t.Fatalf("detached: %d processes, want 3 (nothing heals)", got)
	}
	expect(t, call(t, "POST", u+"/attach", ""), 200)
	waitFor(t, hs.URL, id, "healed after attach", func(r report) bool {
		return r.ready("worker")+r.ready("helper") == 4 && len(r["worker"].Instances)+len(r["helper"].Instances) == 4 &&
			len(procsOf(id)) == 4
	})

	v = expect(t, call(t, "DELETE", u, ""), 200)
	if v["infraid"] != id {
		t.Fatal(v)
	}
	if left := procsOf(id); len(left) != 0 {
		t.Fatalf("processes left after delete: %v", left)
	}
	expect(t, call(t, "GET", u, ""), 404)

	// Backend calls were timed for /metrics.
	m := string(call(t, "GET", hs.URL+"/metrics", "").body)
	for _, want := range []string{`occopus_backend_call_duration_seconds_count{backend="local",op="create"}`,
		`occopus_backend_call_duration_seconds_count{backend="local",op="destroy"}`,
		`occopus_backend_call_duration_seconds_count{backend="local",op="state"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func killOne(t *testing.T, pids []string) {
	t.Helper()
	sort.Strings(pids)
	pid, _ := strconv.Atoi(pids[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// TestRestart: a new Server (a new Manager) on the same store maintains
// the attached infrastructures again, and not the detached ones.
func TestRestart(t *testing.T) {
	f := newFixture(t)
	srv1, hs1 := f.server(t, nil)
	attached := create(t, hs1.URL, infraYAML)
	detached := create(t, hs1.URL, infraYAML)
	waitFor(t, hs1.URL, attached, "ready", func(r report) bool { return r.ready("worker") == 1 && r.ready("helper") == 1 })
	waitFor(t, hs1.URL, detached, "ready", func(r report) bool { return r.ready("worker") == 1 && r.ready("helper") == 1 })
	expect(t, call(t, "POST", hs1.URL+"/infrastructures/"+detached+"/detach", ""), 200)
	hs1.Close()
	srv1.Close()

	// While nobody maintains them, one instance of each dies.
	killOne(t, procsOf(attached))
	killOne(t, procsOf(detached))

	srv2, err := newServer(t, serverConfig{Manager: srv1Options(f)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urlc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv2.ListenAndServe(ctx, func(u string) { urlc <- u }) }()
	base := <-urlc
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if !srv2.Manager().Attached(attached) || srv2.Manager().Attached(detached) {
		t.Fatal("resumed the wrong infrastructures")
	}
	waitFor(t, base, attached, "healed by the new service", func(r report) bool {
		return r.ready("worker") == 1 && r.ready("helper") == 1 && len(procsOf(attached)) == 2
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(procsOf(detached)); n != 1 {
		t.Fatalf("detached infrastructure: %d processes, want 1 (not maintained)", n)
	}
}

// TestWebhook: notify with a webhook; state changes arrive as JSON.
func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []rest.StateChange
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sc rest.StateChange
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&sc) != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got = append(got, sc)
		mu.Unlock()
	}))
	defer recv.Close()

	f := newFixture(t)
	srv, hs := f.server(t, nil)
	id := submitted(t, srv)
	u := hs.URL + "/infrastructures/" + id
	expect(t, call(t, "POST", u+"/notify", `{"webhook": "`+recv.URL+`/hook"}`), 200)
	expect(t, call(t, "POST", u+"/attach", ""), 200)
	waitFor(t, hs.URL, id, "ready", func(r report) bool { return r.ready("worker") == 1 && r.ready("helper") == 1 })

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		readyNodes := map[string]bool{}
		for _, sc := range got {
			if sc.InfraID != id || sc.NodeID == "" || sc.Time.IsZero() {
				t.Fatalf("state change %+v", sc)
			}
			if sc.State == store.StateReady {
				readyNodes[sc.NodeName] = true
			}
		}
		n := len(got)
		mu.Unlock()
		if readyNodes["worker"] && readyNodes["helper"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d changes, not both ready: %+v", n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Deliveries run concurrently: receivers order them by time.
	mu.Lock()
	creating := 0
	for _, sc := range got {
		if sc.State == store.StateCreating && sc.From == "" {
			creating++
		}
	}
	mu.Unlock()
	if creating != 2 {
		t.Fatalf("%d creations delivered, want 2: %+v", creating, got)
	}

	// The properties survive a restart of the service (event log).
	srv.Close()
	hs.Close()
	mu.Lock()
	got = nil
	mu.Unlock()
	_, hs2 := f.server(t, nil)
	expect(t, call(t, "DELETE", hs2.URL+"/infrastructures/"+id, ""), 200)
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		deleted := 0
		for _, sc := range got {
			if sc.State == "deleted" {
				deleted++
			}
		}
		mu.Unlock()
		if deleted == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deletions delivered after restart: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	r := call(t, "GET", hs2.URL+"/metrics", "")
	if !strings.Contains(string(r.body), `occopus_webhook_deliveries_total{result="ok"}`) {
		t.Fatal("no webhook metric")
	}
}
