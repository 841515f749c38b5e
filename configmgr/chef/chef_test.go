package chef

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/configmgr/chef/cheffake"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
)

const infraID = "0b5c9d2e-1111-4111-8111-111111111111"

// Keys are slow to make: two for the whole test binary.
var (
	keysOnce          sync.Once
	goodKey, otherKey *rsa.PrivateKey
	goodPEM, otherPEM string
)

func keys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		goodKey, goodPEM = cheffake.GenerateKey()
		otherKey, otherPEM = cheffake.GenerateKey()
	})
}

// clock is a settable clock for the fake's converges.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingLimiter records every wait, by endpoint.
type countingLimiter struct{ n atomic.Int64 }

func (l *countingLimiter) Wait(ctx context.Context, endpoint string) error {
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		return errors.New("unexpected endpoint " + endpoint)
	}
	l.n.Add(1)
	return ctx.Err()
}

type env struct {
	fake  *cheffake.Server
	clock *clock
	m     *Manager
	lim   *countingLimiter
	sleep *atomic.Int64 // backoff waits taken
}

type envOptions struct {
	fake    cheffake.Options
	key     string // the key the manager signs with (default: the client's)
	deny    []string
	section map[string]any
	org     string // the organization the manager names (default: the fake's)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	keys(t)
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	if o.fake.Now == nil {
		o.fake.Now = c.now
	}
	if o.fake.ConvergeAfter == 0 {
		o.fake.ConvergeAfter = 5 * time.Second
	}
	f := cheffake.New(o.fake)
	t.Cleanup(f.Close)
	f.AddClient("occopus", &goodKey.PublicKey, o.deny...)
	sec := o.section
	if sec == nil {
		ep := f.URL()
		if o.org != "" {
			ep = f.Root() + "/organizations/" + o.org
		}
		sec = map[string]any{"type": "chef", "endpoint": ep, "run_list": []any{"recipe[apache2]"}}
	}
	key := o.key
	if key == "" {
		key = goodPEM
	}
	authData := map[string]any{"client_name": "occopus", "client_key": key}
	lim := &countingLimiter{}
	m, err := newManager(configmgr.Config{Section: sec, Auth: authData, Limiter: lim}, nil)
	if err != nil {
		t.Fatalf("newManager: %v", err)
	}
	var sleeps atomic.Int64
	m.cloud.Policy = cloudapi.Policy{Attempts: 3, Sleep: func(ctx context.Context, d time.Duration) error {
		sleeps.Add(1)
		return ctx.Err()
	}}
	return &env{fake: f, clock: c, m: m, lim: lim, sleep: &sleeps}
}

func node(nodeID, name string, runList ...any) configmgr.Node {
	return configmgr.Node{Ref: configmgr.Ref{InfraID: infraID, NodeID: nodeID, Name: name},
		Section:    map[string]any{"type": "chef", "run_list": runList},
		Attributes: map[string]any{"apache": map[string]any{"port": 8080}, "wordpress.db.name": "wp"},
		Inbound:    map[string][]descr.Mapping{"db": {{Attributes: [2]string{"fqdn", "wordpress.db.host"}}}},
	}
}

// TestLifecycle runs what the engine does with one node, checking the
// server after each step.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	const id = "3f2a0000-0000-4000-8000-00000000000a"
	if err := e.m.PrepareInfra(ctx, infraID); err != nil {
		t.Fatalf("PrepareInfra: %v", err)
	}
	if env := e.fake.Object("environments", infraID); env == nil || env["description"] != "Occopus infrastructure "+infraID {
		t.Fatalf("environment %s: %v", infraID, env)
	}
	if err := e.m.Register(ctx, node(id, "web", "recipe[apache2]", "role[base]")); err != nil {
		t.Fatalf("Register: %v", err)
	}
	role := infraID + "_web"
	if r := e.fake.Object("roles", role); r == nil {
		t.Errorf("no role %s: roles %v", role, e.fake.Names("roles"))
	}
	n, ok := e.fake.Nodes()[id]
	if !ok {
		t.Fatalf("no node %s: %v", id, e.fake.Names("nodes"))
	}
	if n.Environment != infraID {
		t.Errorf("chef_environment %q, want the infra id", n.Environment)
	}
	if want := []string{"role[" + role + "]", "recipe[connect]", "recipe[apache2]", "role[base]"}; !reflect.DeepEqual(n.RunList, want) {
		t.Errorf("run_list %v, want %v", n.RunList, want)
	}
	wantNormal := map[string]any{
		"apache":    map[string]any{"port": float64(8080)},
		"wordpress": map[string]any{"db": map[string]any{"name": "wp"}},
		"connections": []any{map[string]any{"source_role": infraID + "_db", "source_attribute": "fqdn",
			"destination_attribute": "wordpress.db.host"}},
	}
	if !reflect.DeepEqual(n.Normal, wantNormal) {
		t.Errorf("normal attributes\n%#v\nwant\n%#v", n.Normal, wantNormal)
	}

	// Not converged until the fake's chef-client has run.
	st, err := e.m.Converged(ctx, configmgr.Ref{InfraID: infraID, NodeID: id, Name: "web"})
	if err != nil || st.Converged || !strings.Contains(st.Detail, "has not converged yet") || !strings.Contains(st.Detail, e.fake.URL()) {
		t.Errorf("Converged before the run = %+v, %v; want not converged, naming the server", st, err)
	}
	e.clock.add(6 * time.Second)
	st, err = e.m.Converged(ctx, configmgr.Ref{InfraID: infraID, NodeID: id, Name: "web"})
	if err != nil || !st.Converged {
		t.Errorf("Converged after the run = %+v, %v; want converged", st, err)
	}

	// A second pass writes nothing: everything is as wanted already,
	// also after chef-client saved the node with its automatic attributes.
	before := e.fake.Writes()
	if err := e.m.PrepareInfra(ctx, infraID); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Register(ctx, node(id, "web", "recipe[apache2]", "role[base]")); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Writes(); got != before {
		t.Errorf("a repeated registration wrote %d times: %v", got-before, e.fake.WritesOf())
	}
	if n := e.fake.Nodes()[id]; n.Automatic["ohai_time"] == nil {
		t.Errorf("re-registration lost the automatic attributes: %v", n.Automatic)
	}
	// A changed run list updates the node and keeps chef-client's work.
	if err := e.m.Register(ctx, node(id, "web", "recipe[nginx]")); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Nodes()[id]; n.RunList[2] != "recipe[nginx]" || n.Automatic["ohai_time"] == nil {
		t.Errorf("after an update: run_list %v, automatic %v", n.RunList, n.Automatic)
	}
	if w := e.fake.WritesOf(); w["PUT nodes"] != 1 {
		t.Errorf("writes %v, want one PUT of the node", w)
	}

	// Dropping deletes the node and the client chef-client made.
	if cl := e.fake.Object("clients", id); cl == nil {
		t.Fatalf("the fake's chef-client registered no client %s", id)
	}
	for i := range 2 { // gone is success
		if err := e.m.DropNode(ctx, configmgr.Ref{InfraID: infraID, NodeID: id, Name: "web"}); err != nil {
			t.Fatalf("DropNode #%d: %v", i+1, err)
		}
	}
	if e.fake.Object("nodes", id) != nil || e.fake.Object("clients", id) != nil {
		t.Errorf("node or client %s left: nodes %v clients %v", id, e.fake.Names("nodes"), e.fake.Names("clients"))
	}
	st, err = e.m.Converged(ctx, configmgr.Ref{InfraID: infraID, NodeID: id, Name: "web"})
	if err != nil || st.Converged || !strings.Contains(st.Detail, "has no node "+id) {
		t.Errorf("Converged of a deleted node = %+v, %v", st, err)
	}
	if n := e.lim.n.Load(); n < int64(e.fake.Requests()) {
		t.Errorf("%d requests, only %d waited for the rate limit", e.fake.Requests(), n)
	}
	if a := e.fake.Accepted(); a["1.0"] != 0 || a["1.3"] == 0 {
		t.Errorf("protocols accepted %v, want 1.3 only", a)
	}
}

// TestDropInfra: destroy finds by name what a crash left (a node never
// recorded, its client, the roles) and leaves other infrastructures alone.
func TestDropInfra(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	const other = "99999999-9999-4999-8999-999999999999"
	for _, in := range []string{infraID, other} {
		if err := e.m.PrepareInfra(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []configmgr.Node{node("n1", "web"), node("n2", "db")} {
		if err := e.m.Register(ctx, n); err != nil {
			t.Fatalf("Register %d: %v", i, err)
		}
	}
	o := node("n3", "web")
	o.InfraID = other
	if err := e.m.Register(ctx, o); err != nil {
		t.Fatal(err)
	}
	e.clock.add(time.Minute) // clients appear
	for i := range 2 {
		if err := e.m.DropInfra(ctx, infraID); err != nil {
			t.Fatalf("DropInfra #%d: %v", i+1, err)
		}
	}
	if got, want := e.fake.Names("nodes"), []string{"n3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	if got, want := e.fake.Names("clients"), []string{"n3", "occopus"}; !reflect.DeepEqual(got, want) {
		t.Errorf("clients %v, want %v", got, want)
	}
	if got, want := e.fake.Names("roles"), []string{other + "_web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
	if got, want := e.fake.Names("environments"), []string{other, "_default"}; !reflect.DeepEqual(got, want) {
		t.Errorf("environments %v, want %v", got, want)
	}
}

// TestUserEnvironment: an `environment` of the user's must exist, takes
// the nodes, and survives the destroy with the nodes of others in it.
func TestUserEnvironment(t *testing.T) {
	keys(t)
	f := cheffake.New(cheffake.Options{ConvergeAfter: time.Hour})
	t.Cleanup(f.Close)
	f.AddClient("occopus", &goodKey.PublicKey)
	sec := map[string]any{"type": "chef", "endpoint": f.URL(), "run_list": []any{"apache2"}, "environment": "prod"}
	m, err := newManager(configmgr.Config{Section: sec, Auth: map[string]any{"client_name": "occopus", "client_key": goodPEM}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	err = m.PrepareInfra(ctx, infraID)
	if !errors.Is(err, errNoEnvironment) || !strings.Contains(err.Error(), "no environment prod") {
		t.Fatalf("PrepareInfra without the environment: %v", err)
	}
	own := map[string]any{"type": "chef", "endpoint": f.URL(), "run_list": []any{}}
	admin, err := newManager(configmgr.Config{Section: own, Auth: map[string]any{"client_name": "occopus", "client_key": goodPEM}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PrepareInfra(ctx, "prod"); err != nil { // the user makes it
		t.Fatal(err)
	}
	if err := m.PrepareInfra(ctx, infraID); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(ctx, node("n1", "web", "apache2")); err != nil {
		t.Fatal(err)
	}
	n := f.Nodes()["n1"]
	if n.Environment != "prod" || n.RunList[2] != "recipe[apache2]" {
		t.Errorf("node: environment %q run_list %v; want prod and the bare name as a recipe", n.Environment, n.RunList)
	}
	foreign := node("x1", "web")
	foreign.InfraID = "another"
	if err := m.Register(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := m.DropInfra(ctx, infraID); err != nil {
		t.Fatal(err)
	}
	if got := f.Names("nodes"); !reflect.DeepEqual(got, []string{"x1"}) {
		t.Errorf("nodes %v, want only the other infrastructure's", got)
	}
	if f.Object("environments", "prod") == nil {
		t.Error("the user's environment was deleted")
	}
}

// TestProtocol10: a server that takes only protocol 1.0 is found out on
// the first request, and every later request is signed with 1.0.
func TestProtocol10(t *testing.T) {
	e := newEnv(t, envOptions{fake: cheffake.Options{Version: "1.0"}})
	ctx := t.Context()
	if err := e.m.PrepareInfra(ctx, infraID); err != nil {
		t.Fatalf("PrepareInfra: %v", err)
	}
	refused := e.fake.Refused()
	if refused != 1 {
		t.Errorf("%d requests refused, want the first 1.3 one only", refused)
	}
	if err := e.m.Register(ctx, node("n1", "web")); err != nil {
		t.Fatal(err)
	}
	if e.fake.Refused() != refused {
		t.Errorf("requests refused after the switch: %d", e.fake.Refused()-refused)
	}
	if a := e.fake.Accepted(); a["1.3"] != 0 || a["1.0"] < 4 {
		t.Errorf("accepted %v, want 1.0 only", a)
	}
}

// TestErrors: what Chef refuses is one error naming the node, the server
// and Chef's message, never the key, and is not retried; what is
// transient is.
func TestErrors(t *testing.T) {
	keys(t)
	cases := []struct {
		name     string
		o        envOptions
		prepare  func(f *cheffake.Server)
		wantCode int
		want     []string // in the error's text
		notFound bool
		sleeps   int64
	}{
		{name: "bad key", o: envOptions{key: otherPEM}, wantCode: 401,
			want: []string{"chef: read role " + infraID + "_web for node web (n1)", "Invalid signature for user or client 'occopus'", "(HTTP 401)"}},
		{name: "unknown client", prepare: func(f *cheffake.Server) {
			f.AddClient("occopus", nil)
		}, wantCode: 401, want: []string{"Failed to authenticate as 'occopus'"}},
		{name: "forbidden", o: envOptions{deny: []string{"create"}}, wantCode: 403,
			want: []string{"create role " + infraID + "_web for node web (n1)", "missing create permission", "(HTTP 403)"}},
		{name: "no such organization", o: envOptions{org: "nope"}, wantCode: 404,
			want: []string{"organization 'nope' does not exist.", "/organizations/nope/roles/"}},
		{name: "server trouble is retried", prepare: func(f *cheffake.Server) { f.Fail(5, 503, "Service Unavailable") },
			wantCode: 503, want: []string{"Service Unavailable", "gave up after 3 attempts"}, sleeps: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.o)
			if tc.prepare != nil {
				tc.prepare(e.fake)
			}
			err := e.m.Register(t.Context(), node("n1", "web"))
			var ce *cloudapi.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a *cloudapi.Error", err, err)
			}
			if ce.Code != tc.wantCode || ce.NotFound != tc.notFound {
				t.Errorf("code %d not-found %v, want %d %v: %v", ce.Code, ce.NotFound, tc.wantCode, tc.notFound, err)
			}
			for _, w := range append(tc.want, e.fake.Root()) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, key := range []string{goodPEM, otherPEM} {
				for line := range strings.Lines(key) {
					if l := strings.TrimSpace(line); len(l) > 20 && strings.Contains(err.Error(), l) {
						t.Errorf("the error quotes the key: %v", err)
					}
				}
			}
			if got := e.sleep.Load(); got != tc.sleeps {
				t.Errorf("%d retries, want %d", got, tc.sleeps)
			}
		})
	}
}

// TestUnsigned: the fake refuses what is not signed, or signed by an
// unknown key, as Chef Server does.
func TestUnsigned(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, err := http.Get(e.fake.URL() + "/nodes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned GET: %d, want 401", resp.StatusCode)
	}
	if e.fake.Refused() != 1 {
		t.Errorf("refused %d", e.fake.Refused())
	}
}

func TestNewRefuses(t *testing.T) {
	keys(t)
	good := map[string]any{"client_name": "occopus", "client_key": goodPEM}
	cases := []struct {
		name    string
		section map[string]any
		auth    map[string]any
		want    string
	}{
		{"no endpoint", map[string]any{"type": "chef", "run_list": []any{}}, good, `endpoint "" is not the http(s) URL`},
		{"not a URL", map[string]any{"type": "chef", "endpoint": "chef.example.org"}, good, "not the http(s) URL"},
		{"no credentials", map[string]any{"type": "chef", "endpoint": "https://chef.example/organizations/o"}, nil,
			"no credentials for chef server https://chef.example/organizations/o: auth_data.yaml needs a config_management entry of type chef"},
		{"no key", map[string]any{"type": "chef", "endpoint": "https://chef.example/organizations/o"},
			map[string]any{"client_name": "occopus"}, "lack client_key"},
		{"not a key", map[string]any{"type": "chef", "endpoint": "https://chef.example/organizations/o"},
			map[string]any{"client_name": "occopus", "client_key": "s3cret-not-a-pem"}, "client_key of client occopus for chef server https://chef.example/organizations/o is not a PEM RSA private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(configmgr.Config{Section: tc.section, Auth: tc.auth})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
	m, err := New(configmgr.Config{Section: map[string]any{"type": "chef", "endpoint": "https://chef.example/organizations/o/"}, Auth: good})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.String(), "chef server https://chef.example/organizations/o (client occopus)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestRunList(t *testing.T) {
	cases := []struct {
		items []string
		want  []string
	}{
		{nil, []string{"role[r]", "recipe[connect]"}},
		{[]string{"recipe[apache2]"}, []string{"role[r]", "recipe[connect]", "recipe[apache2]"}},
		{[]string{"apache2", " ", "role[base]"}, []string{"role[r]", "recipe[connect]", "recipe[apache2]", "role[base]"}},
		// Occopus prepends only what is missing.
		{[]string{"recipe[a]", "recipe[connect]"}, []string{"role[r]", "recipe[a]", "recipe[connect]"}},
		{[]string{"role[r]", "recipe[a]"}, []string{"recipe[connect]", "role[r]", "recipe[a]"}},
	}
	for _, tc := range cases {
		if got := RunList("r", tc.items); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RunList(%q) = %q, want %q", tc.items, got, tc.want)
		}
	}
}

func TestNormalAttributes(t *testing.T) {
	cases := []struct {
		name    string
		attrs   map[string]any
		inbound map[string][]descr.Mapping
		want    map[string]any
		err     string
	}{
		{name: "none", want: map[string]any{"connections": []any{}}},
		{name: "dotted keys nest, a mapping first",
			attrs: map[string]any{"a.b.c": 1, "a": map[string]any{"x": "y"}, "plain": true},
			want:  map[string]any{"a": map[string]any{"x": "y", "b": map[string]any{"c": float64(1)}}, "plain": true, "connections": []any{}}},
		{name: "a scalar is replaced by a mapping", attrs: map[string]any{"a": 1, "a.b": 2},
			want: map[string]any{"a": map[string]any{"b": float64(2)}, "connections": []any{}}},
		{name: "connections by dependency name",
			inbound: map[string][]descr.Mapping{
				"z": {{Attributes: [2]string{"ip", "z.ip"}}},
				"a": {{Attributes: [2]string{"fqdn", "db.host"}}, {Attributes: [2]string{"port", "db.port"}}}},
			want: map[string]any{"connections": []any{
				map[string]any{"source_role": "i_a", "source_attribute": "fqdn", "destination_attribute": "db.host"},
				map[string]any{"source_role": "i_a", "source_attribute": "port", "destination_attribute": "db.port"},
				map[string]any{"source_role": "i_z", "source_attribute": "ip", "destination_attribute": "z.ip"},
			}}},
		{name: "empty part", attrs: map[string]any{"a..b": 1}, err: `attribute "a..b" has an empty part`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalAttributes("i", tc.attrs, tc.inbound)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, %v\nwant %#v", got, err, tc.want)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	cases := map[string]string{
		`{"error":["a","b"]}`:   "a; b",
		`{"error":"one"}`:       "one",
		`<html>404</html>`:      "",
		`{"error":{"x":1}}`:     "",
		`{"error":["  a\n b"]}`: "a b",
	}
	for body, want := range cases {
		if got := message([]byte(body)); got != want {
			t.Errorf("message(%s) = %q, want %q", body, got, want)
		}
	}
	if got := message([]byte(`{"error":["` + strings.Repeat("x", 600) + `"]}`)); len(got) > maxMessage+len("…") {
		t.Errorf("message not bounded: %d bytes", len(got))
	}
}

// TestConcurrentRegistrations: instances of one node registered at once
// share one role; the losers of the race to create it take its 409.
func TestConcurrentRegistrations(t *testing.T) {
	e := newEnv(t, envOptions{})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.m.Register(t.Context(), node(fmt.Sprintf("n%d", i), "web", "recipe[apache2]"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Register n%d: %v", i, err)
		}
	}
	if got := e.fake.Names("roles"); !reflect.DeepEqual(got, []string{infraID + "_web"}) {
		t.Errorf("roles %v", got)
	}
	if n := len(e.fake.Names("nodes")); n != len(errs) {
		t.Errorf("%d nodes, want %d", n, len(errs))
	}
	if w := e.fake.WritesOf(); w["POST roles"] != 1 || w["POST nodes"] != len(errs) || w["PUT nodes"] != 0 {
		t.Errorf("writes %v", w)
	}
}
