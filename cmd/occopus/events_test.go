package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/rest"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/sqlite"
)

// TestEventsCommand: `occopus events` prints an infrastructure's log from
// the local store, as text and as JSON lines; -n and --after choose where
// it starts; an unknown id exits 1 naming it.
func TestEventsCommand(t *testing.T) {
	itHome(t)
	occOK(t, "import", "../../examples/local-hello/nodes.yaml")
	stdout, _ := occOK(t, "build", "../../examples/local-hello/infra.yaml")
	id := lastLine(stdout)
	t.Cleanup(func() { occ(t, "destroy", "-i", id) })

	text, _ := occOK(t, "events", "-i", id)
	for _, want := range []string{"infra.created", "instance.state", "creating -> pending", "pending -> ready", id[:8]} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	js, _ := occOK(t, "events", "-i", id, "--format", "json")
	var evs []store.Event
	for _, line := range strings.Split(strings.TrimSpace(js), "\n") {
		var ev store.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.InfraID != id || ev.Seq == 0 {
			t.Errorf("event %+v", ev)
		}
		evs = append(evs, ev)
	}
	if n := len(strings.Split(strings.TrimSpace(text), "\n")); n != len(evs) {
		t.Errorf("%d text lines, %d JSON lines", n, len(evs))
	}
	two, _ := occOK(t, "events", "-i", id, "-n", "2", "--format", "json")
	if lines := strings.Split(strings.TrimSpace(two), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"seq":`+strconv.FormatInt(evs[len(evs)-1].Seq, 10)) {
		t.Errorf("-n 2: %q", two)
	}
	rest, _ := occOK(t, "events", "-i", id, "--after", strconv.FormatInt(evs[0].Seq, 10), "--format", "json")
	if n := len(strings.Split(strings.TrimSpace(rest), "\n")); n != len(evs)-1 {
		t.Errorf("--after the first: %d events, want %d", n, len(evs)-1)
	}
	_, stderr, code := occ(t, "events", "-i", "no-such-infra")
	if code != 1 || !strings.Contains(stderr, "no-such-infra") {
		t.Errorf("unknown id: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := occ(t, "events", "--format", "xml"); code == 0 {
		t.Error("--format xml accepted")
	}
}

// TestEventsFromService: `occopus events --url` follows a REST service's
// GET /events with its token, filtered to one infrastructure; a wrong
// token ends it with the service's refusal.
func TestEventsFromService(t *testing.T) {
	home := itHome(t)
	occOK(t, "import", "../../examples/local-hello/nodes.yaml")
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := occopus.New(occopus.Options{Store: st, Home: home, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv, err := rest.New(m, rest.Config{Token: "cli-token-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	nodes := `'node_def:local_hello':
  - resource: {type: local, stop_timeout: 1}
    contextualisation: {type: docker, command: ["sleep", "3600"]}
    health_check: {ping: false}
`
	if err := importInto(m, nodes); err != nil {
		t.Fatal(err)
	}
	in := "infra_name: from-service\nnodes:\n  - {name: hello, type: local_hello}\n"
	id, err := submit(m, in)
	if err != nil {
		t.Fatal(err)
	}
	defer m.TearDown(context.Background(), id)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, "occopus", []string{"events", "--url", hs.URL, "--token", "cli-token-1", "-i", id, "--after", "0"}, strings.NewReader(""), &out, &errb)
	}()
	if err := m.Attach(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "pending -> ready") {
		if time.Now().After(deadline) {
			t.Fatalf("no ready event from the service; stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "infra.created") {
		t.Errorf("stdout:\n%s", out.String())
	}
	_, stderr, code := occ(t, "events", "--url", hs.URL, "--token", "wrong")
	if code == 0 || !strings.Contains(stderr, "401") {
		t.Errorf("wrong token: exit %d, %q", code, stderr)
	}
}

func importInto(m *occopus.Manager, yaml string) error {
	root, err := descr.Parse("nodes.yaml", []byte(yaml), descr.LoadOptions{})
	if err != nil {
		return err
	}
	defs, err := descr.DecodeNodeDefs("nodes.yaml", root)
	if err != nil {
		return err
	}
	return m.ImportNodeDefs(context.Background(), defs)
}

func submit(m *occopus.Manager, yaml string) (string, error) {
	in, err := descr.ParseInfra("infra.yaml", []byte(yaml), descr.LoadOptions{})
	if err != nil {
		return "", err
	}
	return m.Submit(context.Background(), in, "")
}

// TestMaintainCyclicPrintsTheFeed: maintain -c prints the
// infrastructure's events from the event log, the lines of `events`,
// including a scale request another process stores meanwhile.
func TestMaintainCyclicPrintsTheFeed(t *testing.T) {
	itHome(t)
	occOK(t, "import", "../../examples/local-hello/nodes.yaml")
	stdout, _ := occOK(t, "build", "../../examples/local-hello/infra.yaml")
	id := lastLine(stdout)
	t.Cleanup(func() { occ(t, "destroy", "-i", id) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, "occopus", []string{"maintain", "-i", id, "-c", "-t", "0.2"}, strings.NewReader(""), &out, &errb)
	}()
	deadline := time.Now().Add(60 * time.Second)
	// The command may not have started following when a request is
	// stored: ask again while none is printed.
	var asked time.Time
	for !strings.Contains(errb.String(), "scale.requested") {
		if time.Since(asked) > time.Second {
			occOK(t, "scale", "-i", id, "-n", "hello", "-c", "1")
			asked = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("maintain -c printed no scale.requested event:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for !strings.Contains(errb.String(), "pending -> ready") {
		if time.Now().After(deadline) {
			t.Fatalf("maintain -c printed no new instance becoming ready:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d:\n%s", code, errb.String())
	}
	if strings.Contains(errb.String(), "infra.created") {
		t.Errorf("maintain -c starts at the end of the log, yet printed the creation:\n%s", errb.String())
	}
}
