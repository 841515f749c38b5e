package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newHandler connects to the local engine, or skips when there is none —
// except under CI=true, where a missing engine is a failure.
func newHandler(t *testing.T) *Handler {
	t.Helper()
	hi, err := New(resource.Config{Resource: map[string]any{"type": "docker"}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := hi.(*Handler)
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.cli.Ping(ctx); err != nil {
		msg := "no Docker engine at " + h.cli.DaemonHost() + ": " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the engine is required)")
		}
		t.Skip(msg)
	}
	ensureImages(t, h.cli)
	return h
}

// spec is a spec for a long-running busybox container in a fresh infra.
func spec(t *testing.T) resource.Spec {
	return resource.Spec{
		InfraID:  "test" + randHex(6),
		NodeID:   randHex(8),
		NodeName: "node-" + t.Name(),
		Resource: map[string]any{"type": "docker", "origin": "local", "image": imgBusybox, "tag": "latest"},
		Context:  resource.Context{Command: []string{"sleep 3600"}},
	}
}

// create creates and registers the container's removal.
func create(t *testing.T, h *Handler, s resource.Spec) resource.Handle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hd, err := h.Create(ctx, s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Destroy(context.Background(), hd); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return hd
}

func TestConformance(t *testing.T) {
	h := newHandler(t)
	resourcetest.Run(t, h, spec, resourcetest.WithKill(func(t *testing.T, hd resource.Handle) {
		if err := h.cli.ContainerKill(context.Background(), hd.ID, "KILL"); err != nil {
			t.Fatalf("docker kill: %v", err)
		}
	}))
}

func TestRegistered(t *testing.T) {
	h, err := resource.New(resource.Config{Resource: map[string]any{"type": "docker"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*Handler); !ok {
		t.Fatalf("resource.New(type docker) = %T", h)
	}
}

func TestEndpoint(t *testing.T) {
	_, err := New(resource.Config{Resource: map[string]any{"endpoint": "replace_with_your_docker_endpoint"}})
	if err == nil || !strings.Contains(err.Error(), "replace_with_your_docker_endpoint") {
		t.Errorf("placeholder endpoint: err = %v, want one naming it", err)
	}
	if _, err := New(resource.Config{Resource: map[string]any{"endpoint": "ftp://x"}}); err == nil {
		t.Error("ftp:// endpoint accepted")
	}
	for _, ep := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"} {
		h, err := New(resource.Config{Resource: map[string]any{"endpoint": ep}})
		if err != nil {
			t.Errorf("endpoint %s: %v", ep, err)
			continue
		}
		if got := h.(*Handler).cli.DaemonHost(); got != ep {
			t.Errorf("endpoint %s: client host %s", ep, got)
		}
	}
	// A bare socket path is taken as unix://.
	sock := t.TempDir() + "/d.sock"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, err := New(resource.Config{Resource: map[string]any{"endpoint": sock}})
	if err != nil {
		t.Fatalf("socket path: %v", err)
	}
	if got := h.(*Handler).cli.DaemonHost(); got != "unix://"+sock {
		t.Errorf("socket path: client host %s", got)
	}
}

func TestSplitShell(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"sh -c /root/start.sh", []string{"sh", "-c", "/root/start.sh"}},
		{`  sh   -c  'echo $a; sleep 1'  `, []string{"sh", "-c", "echo $a; sleep 1"}},
		{`echo "a \"b\" \$c \x" d\ e ''`, []string{"echo", `a "b" $c \x`, "d e", ""}},
		{"a\\\nb c", []string{"ab", "c"}},
		{`x"y"'z'`, []string{"xyz"}},
		{"", nil},
	} {
		got, err := splitShell(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitShell(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`echo 'x`, `echo "x`, `echo x\`} {
		if _, err := splitShell(bad); err == nil {
			t.Errorf("splitShell(%q) accepted", bad)
		}
	}
}

func TestContainerName(t *testing.T) {
	n := ContainerName("0123456789abcdef", "node-1")
	if n != "occopus-01234567-node-1" {
		t.Errorf("ContainerName = %s", n)
	}
	a, b := ContainerName("infra", "a/b"), ContainerName("infra", "a:b")
	if a == b || strings.ContainsAny(a, "/:") {
		t.Errorf("cleaned names %q, %q: want distinct and valid", a, b)
	}
}

func TestMapState(t *testing.T) {
	for s, want := range map[container.ContainerState]resource.State{
		container.StateRunning: resource.StateRunning, container.StateCreated: resource.StatePending,
		container.StateRestarting: resource.StatePending, container.StatePaused: resource.StatePending,
		container.StateExited: resource.StateShutdown, container.StateDead: resource.StateShutdown,
		container.StateRemoving: resource.StateShutdown, "weird": resource.StateUnknown,
	} {
		if got := mapState(s); got != want {
			t.Errorf("mapState(%s) = %s, want %s", s, got, want)
		}
	}
}

// logsContain waits until the container's output contains want.
func logsContain(t *testing.T, h *Handler, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got []byte
	for time.Now().Before(deadline) {
		rc, err := h.cli.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			t.Fatalf("logs: %v", err)
		}
		got, _ = io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(got, []byte(want)) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("container %s output lacks %q; got %q", shortID(id), want, got)
}

func TestLabelsEnvCommandAddresses(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()

	// The helloworld image's own start.sh, configured by env only.
	s := spec(t)
	s.StoreID = "store-" + randHex(8)
	s.Resource["image"] = imgHelloworld
	msg := "hello-" + randHex(4)
	s.Context = resource.Context{Env: []string{"message=" + msg}}
	hd := create(t, h, s)
	logsContain(t, h, hd.ID, msg)

	c, err := h.cli.ContainerInspect(ctx, hd.ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{LabelInfraID: s.InfraID, LabelNodeID: s.NodeID, LabelNodeName: s.NodeName, LabelStoreID: s.StoreID} {
		if got := c.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if got, want := strings.TrimPrefix(c.Name, "/"), ContainerName(s.InfraID, s.NodeID); got != want {
		t.Errorf("name = %s, want %s", got, want)
	}
	addr, err := h.Addresses(ctx, hd)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(addr.Private); ip == nil || addr.Public != addr.Private || addr.Private != c.NetworkSettings.Networks["bridge"].IPAddress {
		t.Errorf("Addresses = %+v, inspect says %s", addr, c.NetworkSettings.Networks["bridge"].IPAddress)
	}

	// Command as one string, split shell-style, with env.
	s2 := spec(t)
	s2.Context = resource.Context{
		Env:     []string{"A=x", "B=y z"},
		Command: []string{`sh -c 'echo "one:$A-$B"; exec sleep 3600'`},
	}
	hd2 := create(t, h, s2)
	logsContain(t, h, hd2.ID, "one:x-y z")

	// Command as a list.
	s3 := spec(t)
	s3.Context = resource.Context{Env: []string{"A=q"}, Command: []string{"sh", "-c", "echo list:$A; exec sleep 3600"}}
	hd3 := create(t, h, s3)
	logsContain(t, h, hd3.ID, "list:q")

	// The ping tutorial: one container pings another at its Addresses().
	s4 := spec(t)
	s4.Resource["image"] = imgPing
	s4.Context = resource.Context{Env: []string{"target_ip=" + addr.Private}}
	hd4 := create(t, h, s4)
	logsContain(t, h, hd4.ID, "5 packets received")
}

func TestCreateStartsCreatedContainer(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	s := spec(t)
	// As if a crash came between ContainerCreate and ContainerStart.
	yes := true
	resp, err := h.cli.ContainerCreate(ctx, &container.Config{
		Image: imgBusybox + ":latest", Cmd: []string{"sleep", "3600"},
		Labels: map[string]string{LabelInfraID: s.InfraID, LabelNodeID: s.NodeID, LabelNodeName: s.NodeName},
	}, &container.HostConfig{Init: &yes}, nil, nil, ContainerName(s.InfraID, s.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	})
	if st, _ := h.State(ctx, resource.Handle{ID: resp.ID}); st != resource.StatePending {
		t.Errorf("State of a created container = %s, want pending", st)
	}
	hd := create(t, h, s)
	if hd.ID != resp.ID {
		t.Fatalf("Create made %s, want the existing %s", hd.ID, resp.ID)
	}
	if st, err := h.State(ctx, hd); err != nil || st != resource.StateRunning {
		t.Errorf("State = %s, %v; want running", st, err)
	}

	// A name held by someone else's container is an error, not adoption.
	other := s
	other.InfraID = s.InfraID[:8] + "zz" // same name prefix, other infra
	if _, err := h.Create(ctx, other); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("Create over a foreign container: %v", err)
	}
}

func TestOriginLocalMissing(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	s := spec(t)
	s.Resource["image"] = "occopus/missing-" + randHex(4)
	_, err := h.Create(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "docker: create node "+s.NodeID) {
		t.Fatalf("Create with a missing local image: %v", err)
	}
	if got, _ := h.List(context.Background(), s.InfraID); len(got) != 0 {
		t.Errorf("a failed Create left %+v", got)
	}
}

// TestOriginRegistryUnreachable pulls from a registry on a closed loopback
// port: the error must say what failed, and nothing is left behind.
func TestOriginRegistryUnreachable(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // now nothing listens there
	s := spec(t)
	s.Resource["origin"] = addr
	s.Resource["image"] = "occopus/nothing"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = h.Create(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "pull "+addr+"/occopus/nothing:latest") {
		t.Fatalf("Create from an unreachable registry: %v", err)
	}
}

// importSpec is a spec whose image comes from a tarball, under a tag of its
// own that is removed at the end.
func importSpec(t *testing.T, h *Handler, origin string) resource.Spec {
	s := spec(t)
	s.Resource["origin"] = origin
	s.Resource["image"] = "occopus-test/imported-" + randHex(4)
	s.Resource["tag"] = "v1"
	ref := s.Resource["image"].(string) + ":v1"
	// Registered before any container's removal, so it runs after them.
	t.Cleanup(func() {
		_, _ = h.cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	// Import gives no CMD; the command comes from contextualisation.
	return s
}

func TestOriginTarball(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	tar := tarball(t, "busybox")
	for name, origin := range map[string]string{"file-url": "file://" + tar, "path": tar} {
		t.Run(name, func(t *testing.T) {
			s := importSpec(t, h, origin)
			hd := create(t, h, s)
			ref := s.Resource["image"].(string) + ":v1"
			img, err := h.cli.ImageInspect(ctx, ref)
			if err != nil {
				t.Fatalf("imported image %s: %v", ref, err)
			}
			if st, err := h.State(ctx, hd); err != nil || (st != resource.StateRunning && st != resource.StatePending) {
				t.Errorf("State = %s, %v", st, err)
			}
			// A second node with the same origin reuses the image.
			s2 := s
			s2.NodeID = randHex(8)
			create(t, h, s2)
			img2, err := h.cli.ImageInspect(ctx, ref)
			if err != nil || img2.ID != img.ID {
				t.Errorf("second Create re-imported: %s → %s (%v)", img.ID, img2.ID, err)
			}
		})
	}
	t.Run("missing-file", func(t *testing.T) {
		s := importSpec(t, h, "file://"+t.TempDir()+"/nope.tar")
		if _, err := h.Create(ctx, s); err == nil || !strings.Contains(err.Error(), "nope.tar") {
			t.Errorf("Create from a missing tarball: %v", err)
		}
	})
}

// TestOriginURL has the engine fetch the tarball from a loopback server.
func TestOriginURL(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var hits atomic.Int32
	tar := tarball(t, "busybox")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeFile(w, r, tar)
	}))
	defer srv.Close()
	s := importSpec(t, h, srv.URL+"/busybox.tar")
	create(t, h, s)
	s2 := s
	s2.NodeID = randHex(8)
	create(t, h, s2)
	if n := hits.Load(); n != 1 {
		t.Errorf("tarball fetched %d times, want 1", n)
	}
}

func TestNetwork(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	name := "occopus-test-" + randHex(4)
	// Internal: the test network reaches nothing outside the engine.
	if _, err := h.cli.NetworkCreate(ctx, name, network.CreateOptions{Internal: true}); err != nil {
		t.Fatalf("network create: %v", err)
	}
	t.Cleanup(func() { _ = h.cli.NetworkRemove(context.Background(), name) })
	s := spec(t)
	s.Resource["network"] = name
	hd := create(t, h, s)
	c, err := h.cli.ContainerInspect(ctx, hd.ID)
	if err != nil {
		t.Fatal(err)
	}
	ep := c.NetworkSettings.Networks[name]
	if ep == nil || ep.IPAddress == "" {
		t.Fatalf("container not on network %s: %+v", name, c.NetworkSettings.Networks)
	}
	addr, err := h.Addresses(ctx, hd)
	if err != nil || addr.Private != ep.IPAddress {
		t.Errorf("Addresses = %+v, %v; want %s", addr, err, ep.IPAddress)
	}
	// Adopted via List, the handle still names the network.
	got, err := h.List(ctx, s.InfraID)
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %+v, %v", got, err)
	}
	if a, err := h.Addresses(ctx, got[0].Handle); err != nil || a.Private != ep.IPAddress {
		t.Errorf("Addresses via List handle = %+v, %v", a, err)
	}
}

// TestBadCommand: with an init as PID 1 a missing program is not a start
// error but an exit, which State reports as shutdown.
func TestBadCommand(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	s := spec(t)
	s.Context.Command = []string{"/no/such/program"}
	hd := create(t, h, s)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := h.State(context.Background(), hd)
		if err == nil && st == resource.StateShutdown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("State = %s, %v; want shutdown", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := h.Create(context.Background(), resource.Spec{NodeID: "x"}); err == nil {
		t.Error("Create without infra id accepted")
	}
}

// TestNoOriginTagInImage: `image: name:tag` without origin uses the local
// image, never reaching for a registry.
func TestNoOriginTagInImage(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	s := spec(t)
	s.Resource = map[string]any{"type": "docker", "image": imgBusybox + ":latest", "network_mode": "bridge"}
	hd := create(t, h, s)
	c, err := h.cli.ContainerInspect(context.Background(), hd.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Config.Image != imgBusybox+":latest" || c.HostConfig.NetworkMode != "bridge" {
		t.Errorf("image %s network %s", c.Config.Image, c.HostConfig.NetworkMode)
	}
}

// ListAll finds the labelled containers of every infrastructure with the
// store id each carries (none for one made before store ids), and leaves
// out a container with an infra id label but no node id (made by hand).
func TestListAll(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	ctx := context.Background()
	ours := spec(t)
	ours.StoreID = "store-" + randHex(8)
	old := spec(t) // another infrastructure, no store id
	hdOurs, hdOld := create(t, h, ours), create(t, h, old)
	// By hand: only the infra id label.
	byHand, err := h.cli.ContainerCreate(ctx, &container.Config{Image: imgBusybox + ":latest", Cmd: []string{"sleep", "3600"},
		Labels: map[string]string{LabelInfraID: ours.InfraID}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Destroy(context.Background(), resource.Handle{ID: byHand.ID}) })

	all, err := h.ListAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]resource.Owned{}
	for _, o := range all {
		got[o.Handle.ID] = o
	}
	tests := []struct {
		name                  string
		id                    string
		infra, node, nodeName string
		store                 string
		listed                bool
	}{
		{"with a store id", hdOurs.ID, ours.InfraID, ours.NodeID, ours.NodeName, ours.StoreID, true},
		{"without a store id", hdOld.ID, old.InfraID, old.NodeID, old.NodeName, "", true},
		{"infra id label only", byHand.ID, "", "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := got[tc.id]
			if ok != tc.listed {
				t.Fatalf("listed %v, want %v (ListAll: %d containers)", ok, tc.listed, len(all))
			}
			if !ok {
				return
			}
			if o.InfraID != tc.infra || o.NodeID != tc.node || o.NodeName != tc.nodeName || o.StoreID != tc.store {
				t.Errorf("ListAll has %+v, want infra %s node %s name %s store %q", o, tc.infra, tc.node, tc.nodeName, tc.store)
			}
			if o.Handle.ID != tc.id || ContainerName(o.InfraID, o.NodeID) != strings.TrimPrefix(mustName(t, h, tc.id), "/") {
				t.Errorf("handle %+v does not name container %s", o.Handle, shortID(tc.id))
			}
		})
	}
}

func mustName(t *testing.T, h *Handler, id string) string {
	t.Helper()
	c, err := h.cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Name
}

// engineAPI is a loopback server answering a few Docker Engine API calls,
// for what a real engine does only in a race: list a container that is
// gone by the next call (a create being undone after its client died).
func engineAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request) bool) *Handler {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.47")
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			_, _ = io.WriteString(w, "OK")
			return
		}
		if !answer(w, r) {
			t.Errorf("unexpected engine call %s %s", r.Method, r.URL.Path)
			http.Error(w, `{"message":"not in this test"}`, http.StatusNotImplemented)
		}
	}))
	t.Cleanup(srv.Close)
	hi, err := New(resource.Config{Resource: map[string]any{"type": "docker", "endpoint": "tcp://" + srv.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hi.(*Handler).Close() })
	return hi.(*Handler)
}

func TestFindCreatedContainerThatVanishes(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name      string
		start     int // status of the start call
		wantFound bool
		wantErr   string
	}{
		{"started", http.StatusNoContent, true, ""},
		{"gone before the start", http.StatusNotFound, false, ""},
		{"start refused", http.StatusInternalServerError, false, "start container 0123456789ab of node n1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var starts atomic.Int32
			h := engineAPI(t, func(w http.ResponseWriter, r *http.Request) bool {
				switch {
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/json"):
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `[{"Id":"`+id+`","Names":["/occopus-i1-n1"],"State":"created",`+
						`"Labels":{"occopus.infra_id":"i1","occopus.node_id":"n1","occopus.node_name":"web"},"HostConfig":{"NetworkMode":"bridge"}}]`)
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/"+id+"/start"):
					starts.Add(1)
					if tc.start != http.StatusNoContent {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(tc.start)
						_, _ = io.WriteString(w, `{"message":"No such container: `+id+`"}`)
						return true
					}
					w.WriteHeader(http.StatusNoContent)
				default:
					return false
				}
				return true
			})
			hd, found, err := h.Find(t.Context(), "i1", "n1")
			if starts.Load() != 1 {
				t.Errorf("%d start calls, want 1 (a created container is started)", starts.Load())
			}
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Find: %v, want an error with %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Find: %v", err)
			case found != tc.wantFound:
				t.Fatalf("Find found %v (%+v), want %v", found, hd, tc.wantFound)
			case found && hd.ID != id:
				t.Fatalf("Find: handle %+v, want container %s", hd, id)
			}
		})
	}
}

// A Destroy that meets a removal already under way (one whose client was
// interrupted: the daemon goes on) returns only once the container is
// gone, so that nothing made next runs beside it.
func TestDestroyWaitsForARemovalUnderWay(t *testing.T) {
	const id = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	for _, waitAnswer := range []int{http.StatusOK, http.StatusNotFound} {
		t.Run(strconv.Itoa(waitAnswer), func(t *testing.T) {
			var mu sync.Mutex
			var calls []string
			note := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
			h := engineAPI(t, func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/"+id+"/stop"):
					w.WriteHeader(http.StatusNotModified) // already stopped
				case r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/containers/"+id):
					w.WriteHeader(http.StatusConflict)
					_, _ = io.WriteString(w, `{"message":"removal of container `+id+` is already in progress"}`)
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/"+id+"/wait"):
					if c := r.URL.Query().Get("condition"); c != "removed" {
						t.Errorf("wait condition %q, want removed", c)
					}
					w.WriteHeader(waitAnswer)
					if waitAnswer == http.StatusOK {
						_, _ = io.WriteString(w, `{"StatusCode":0}`)
					} else {
						_, _ = io.WriteString(w, `{"message":"No such container: `+id+`"}`)
					}
					note("removed")
				default:
					return false
				}
				return true
			})
			if err := h.Destroy(t.Context(), resource.Handle{ID: id}); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			note("destroy returned")
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(calls, []string{"removed", "destroy returned"}) {
				t.Errorf("calls %v: Destroy must wait for the removal under way", calls)
			}
		})
	}
}

// A create whose name is held by a create still under way (of a process
// killed meanwhile): Create waits until that container answers to the
// name and returns it, rather than failing (its caller then made a second
// instance beside it).
func TestCreateWaitsForTheNameHolder(t *testing.T) {
	const id = "aaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccdddd"
	s := resource.Spec{InfraID: "i1", NodeID: "n1", NodeName: "web",
		Resource: map[string]any{"type": "docker", "origin": "local", "image": "occopus/busybox", "tag": "latest"},
		Context:  resource.Context{Command: []string{"sleep 3600"}}}
	name := ContainerName(s.InfraID, s.NodeID)
	var creates, inspects atomic.Int32
	h := engineAPI(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/create"):
			creates.Add(1)
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"message":"Conflict. The container name \"/`+name+`\" is already in use by container \"`+id+`\"."}`)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/"+name+"/json"):
			if inspects.Add(1) < 3 { // not registered yet
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `{"message":"No such container: `+name+`"}`)
				return true
			}
			_, _ = io.WriteString(w, `{"Id":"`+id+`","Name":"/`+name+`","State":{"Status":"running","Running":true},`+
				`"Config":{"Labels":{"occopus.infra_id":"i1","occopus.node_id":"n1","occopus.node_name":"web"}},"HostConfig":{"NetworkMode":"bridge"}}`)
		default:
			return false
		}
		return true
	})
	hd, err := h.Create(t.Context(), s)
	if err != nil {
		t.Fatalf("Create: %v, want the container that holds the name", err)
	}
	if hd.ID != id {
		t.Errorf("Create returned %s, want %s", hd.ID, id)
	}
	if c, i := creates.Load(), inspects.Load(); c != 3 || i != 3 {
		t.Errorf("%d creates and %d looks, want 3 of each (two while the name's holder was not there yet)", c, i)
	}
}
