package cheffake_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	gochef "github.com/go-chef/chef"

	"github.com/occopus-go/occopus/configmgr/chef/cheffake"
)

var (
	once    sync.Once
	keyPEM  string
	keyPEM2 string
)

func pems() (string, string) {
	once.Do(func() {
		_, keyPEM = cheffake.GenerateKey()
		_, keyPEM2 = cheffake.GenerateKey()
	})
	return keyPEM, keyPEM2
}

// send signs one request with go-chef and returns the status and body.
func send(t *testing.T, url, key, version, method, path, body string) (int, string) {
	t.Helper()
	c, err := gochef.NewClient(&gochef.Config{Name: "admin", Key: key, BaseURL: url + "/", AuthenticationVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := c.NewRequest(method, path, rd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestStatusCodes: each route answers with Chef Server's status and
// message, signed with either protocol the fake is asked to take.
func TestStatusCodes(t *testing.T) {
	key, _ := pems()
	for _, ver := range []string{"1.3", "1.0"} {
		t.Run(ver, func(t *testing.T) {
			f := cheffake.New(cheffake.Options{Version: ver, ConvergeAfter: time.Hour})
			t.Cleanup(f.Close)
			pub, err := gochef.PrivateKeyFromString([]byte(key))
			if err != nil {
				t.Fatal(err)
			}
			f.AddClient("admin", &pub.PublicKey)
			steps := []struct {
				method, path, body string
				want               int
				msg                string
			}{
				{"GET", "nodes/n1", "", 404, "Cannot load node n1"},
				{"POST", "nodes", `{"name":"n1","run_list":["recipe[a]"]}`, 201, `"uri"`},
				{"POST", "nodes", `{"name":"n1"}`, 409, "Node already exists"},
				{"GET", "nodes/n1", "", 200, `"chef_environment":"_default"`},
				{"HEAD", "nodes/n1", "", 200, ""},
				{"PUT", "nodes/n1", `{"name":"n2"}`, 400, "Node name mismatch."},
				{"PUT", "nodes/n1", `{"name":"n1","run_list":["apache2"]}`, 400, "not a valid run list"},
				{"PUT", "nodes/n1", `{"name":"n1","chef_environment":"e"}`, 200, `"chef_environment":"e"`},
				{"PUT", "nodes/zz", `{"name":"zz"}`, 404, "Cannot load node zz"},
				{"POST", "nodes", `{"name":"bad name"}`, 400, "Field 'name' invalid"},
				{"POST", "nodes", `[1]`, 400, "Incorrect JSON"},
				{"POST", "environments", `{"name":"e"}`, 201, ""},
				{"GET", "environments/e/nodes", "", 200, `"n1"`},
				{"GET", "environments/x/nodes", "", 404, "Cannot load environment x"},
				{"DELETE", "environments/_default", "", 405, "cannot be modified"},
				{"GET", "environments", "", 200, `"_default"`},
				{"POST", "roles", `{"name":"r"}`, 201, ""},
				{"GET", "roles", "", 200, `"r"`},
				{"DELETE", "roles/r", "", 200, `"name":"r"`},
				{"DELETE", "roles/r", "", 404, "Cannot load role r"},
				{"POST", "clients", `{"name":"c1"}`, 201, ""},
				{"DELETE", "clients/c1", "", 200, ""},
				{"GET", "cookbooks", "", 404, "Not Found"},
				{"POST", "nodes", `{"name":"big","normal":{"x":"` + strings.Repeat("x", cheffake.MaxBody) + `"}}`, 413, "no more than"},
			}
			for _, s := range steps {
				code, body := send(t, f.URL(), key, ver, s.method, s.path, s.body)
				if code != s.want || !strings.Contains(body, s.msg) {
					t.Errorf("%s %s: %d %s; want %d with %q", s.method, s.path, code, body, s.want, s.msg)
				}
			}
			if w := f.WritesOf(); w["POST nodes"] != 1 || w["PUT nodes"] != 1 || w["DELETE roles"] != 1 {
				t.Errorf("writes %v", w)
			}
			// The oversized body is refused before authentication.
			if a := f.Accepted(); a[ver] != len(steps)-1 {
				t.Errorf("accepted %v, want %d of %s", a, len(steps)-1, ver)
			}
		})
	}
}

// TestAuthentication: what is not signed by the client's key with the
// protocol the server takes is 401, with Chef's message.
func TestAuthentication(t *testing.T) {
	key, other := pems()
	f := cheffake.New(cheffake.Options{})
	t.Cleanup(f.Close)
	pub, _ := gochef.PrivateKeyFromString([]byte(key))
	f.AddClient("admin", &pub.PublicKey, "delete")
	cases := []struct {
		name string
		do   func() (int, string)
		want int
		msg  string
	}{
		{"signed", func() (int, string) { return send(t, f.URL(), key, "1.3", "GET", "nodes", "") }, 200, "{"},
		{"unsigned", func() (int, string) {
			res, err := http.Get(f.URL() + "/nodes")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}, 401, "missing required authentication header(s)"},
		{"another key", func() (int, string) { return send(t, f.URL(), other, "1.3", "GET", "nodes", "") }, 401,
			"Invalid signature for user or client 'admin'"},
		{"protocol 1.0 on a 1.3 server", func() (int, string) { return send(t, f.URL(), key, "1.0", "GET", "nodes", "") }, 401,
			"Unsupported authentication protocol version"},
		{"tampered body", func() (int, string) {
			c, _ := gochef.NewClient(&gochef.Config{Name: "admin", Key: key, BaseURL: f.URL() + "/", AuthenticationVersion: "1.3"})
			req, _ := c.NewRequest("POST", "roles", bytes.NewReader([]byte(`{"name":"r"}`)))
			req.Body = io.NopCloser(strings.NewReader(`{"name":"s"}`))
			res, err := c.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}, 401, "content hash does not match"},
		{"another path", func() (int, string) {
			c, _ := gochef.NewClient(&gochef.Config{Name: "admin", Key: key, BaseURL: f.URL() + "/", AuthenticationVersion: "1.3"})
			req, _ := c.NewRequest("GET", "nodes", nil)
			req.URL.Path += "/x"
			res, err := c.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}, 401, "Invalid signature"},
		{"denied", func() (int, string) { return send(t, f.URL(), key, "1.3", "DELETE", "nodes/x", "") }, 403, "missing delete permission"},
		{"another organization", func() (int, string) {
			return send(t, f.Root()+"/organizations/acme", key, "1.3", "GET", "nodes", "")
		}, 404, "organization 'acme' does not exist."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tc.do()
			if code != tc.want || !strings.Contains(body, tc.msg) {
				t.Errorf("%d %s; want %d with %q", code, body, tc.want, tc.msg)
			}
		})
	}
}

// TestConverge: a node converges ConvergeAfter after it appears on the
// fake's clock, unless frozen; its client appears then.
func TestConverge(t *testing.T) {
	key, _ := pems()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := cheffake.New(cheffake.Options{ConvergeAfter: 10 * time.Second, Now: clock})
	t.Cleanup(f.Close)
	pub, _ := gochef.PrivateKeyFromString([]byte(key))
	f.AddClient("admin", &pub.PublicKey)
	if code, body := send(t, f.URL(), key, "1.3", "POST", "nodes", `{"name":"n1"}`); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	advance(9 * time.Second)
	if n := f.Nodes()["n1"]; n.Automatic["ohai_time"] != nil || !n.Converged.IsZero() {
		t.Fatalf("converged too early: %+v", n)
	}
	f.SetFreeze(true)
	advance(time.Minute)
	if n := f.Nodes()["n1"]; n.Automatic["ohai_time"] != nil {
		t.Fatalf("converged while frozen: %+v", n)
	}
	f.SetFreeze(false)
	_, body := send(t, f.URL(), key, "1.3", "GET", "nodes/n1", "")
	if !strings.Contains(body, `"ohai_time"`) {
		t.Errorf("no ohai_time after the converge: %s", body)
	}
	if got := f.Names("clients"); strings.Join(got, ",") != "admin,n1" {
		t.Errorf("clients %v, want admin and the node's", got)
	}
	if f.Writes() != 1 {
		t.Errorf("writes %d: the fake's own chef-client must not count", f.Writes())
	}
}
