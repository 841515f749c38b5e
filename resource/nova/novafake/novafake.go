// Package novafake is a fake OpenStack cloud for tests and benchmarks: it
// speaks enough of Keystone v3, Nova v2.1 and Neutron v2.0 (JSON over HTTP,
// as gophercloud sends and expects it) for package nova: token creation
// with a catalog, flavors, servers (create, get, list detail, delete),
// external networks, ports and floating IPs. Faults (HTTP codes,
// connection resets, lost answers) are injected per request ([Fault]).
//
// Server and floating addresses are in 127.0.0.0/8 by default (fixed
// 127.30.x.y, floating 127.40.x.y), so a health check that pings them
// stays on loopback.
//
// What the fake received can be read back: every request with its body
// ([Server.Requests], [Server.Bodies]), and every server with its decoded
// user data and metadata ([Server.Servers]); [Server.Created] and
// [Server.Live] count servers.
//
// Limits: no pagination links, no microversions, no policy; images,
// networks of a server, key names and security groups are not checked; a
// server's port exists as soon as the server does; deletes take effect at
// once.
package novafake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Credentials the fake accepts unless Options say otherwise.
const (
	DefaultUser          = "alice"
	DefaultPassword      = "pa55-w0rd-SECRET"
	DefaultAppCredID     = "ac-0123"
	DefaultAppCredSecret = "ac-SECRET-xyz"
	// ProjectID is the project of every token.
	ProjectID = "proj-1"
)

// Options configure a Server. The zero value works.
type Options struct {
	// IdentityPrefix is where Keystone lives ("" or e.g. "/identity").
	IdentityPrefix string
	// Regions of the catalog (default RegionOne); each has its compute and
	// network endpoint under /<region>/compute/v2.1 and /<region>/network.
	Regions []string
	// NoNetwork leaves the network service out of the catalog.
	NoNetwork bool
	// BuildPolls is how many GETs of a server answer BUILD before ACTIVE
	// (default 1; negative: none).
	BuildPolls int
	// CreateLatency delays every server create answer; the server is made
	// when the delay is over. Concurrent creates wait concurrently.
	CreateLatency time.Duration
	// Credentials accepted (defaults DefaultUser, ...).
	User, Password           string
	AppCredID, AppCredSecret string
	// FixedIP and FloatingIP give the address of the n-th server or
	// floating IP (n counts both, from 1). Defaults: 127.30.n/250.n%250+2
	// and 127.40.n/250.n%250+2.
	FixedIP, FloatingIP func(n int) string
}

// Instance is what the fake knows of a server (a copy).
type Instance struct {
	ID, Name, Status, TaskState string
	Region                      string
	Metadata                    map[string]string
	// Request is the "server" object of the create body; UserData is its
	// user_data decoded.
	Request    map[string]any
	UserData   string
	FixedIP    string
	FloatingIP string
	Network    string
	// NetworkID is the network the server was booted on (the first of the
	// request, default net-private): its port is there.
	NetworkID string
	Created   time.Time

	polls int
}

// Request is one request the fake received.
type Request struct {
	Method, Path, Query string
	Body                []byte
}

// Fault answers matching requests instead of (or after) the fake.
type Fault struct {
	Method string
	Path   string // suffix of the URL path
	Status int
	Body   string
	Reset  bool // cut the connection (TCP RST) instead of answering
	After  bool // handle the request first; the answer is lost (Reset)
	Times  int  // how many requests it hits (0 = 1)
	hits   int
}

// Server is a fake OpenStack cloud on an httptest server. It is safe for
// concurrent use.
type Server struct {
	srv *httptest.Server

	identityPrefix string
	regions        []string
	noNetwork      bool
	createLatency  time.Duration
	fixedIP        func(int) string
	floatingIP     func(int) string
	validUser      string
	validPass      string
	validAC        [2]string

	mu          sync.Mutex
	buildPolls  int
	echoSecrets bool
	bootFault   string
	seq         int
	created     int
	requests    []Request
	faults      []*Fault
	servers     map[string]*Instance
	fips        map[string]map[string]any
	flavors     []map[string]any
	networks    []map[string]any
	tokens      int
	valid       map[string]bool // issued, not revoked tokens
}

// New starts a fake cloud; Close stops it.
func New(opts Options) *Server {
	f := &Server{
		identityPrefix: opts.IdentityPrefix,
		regions:        opts.Regions,
		noNetwork:      opts.NoNetwork,
		createLatency:  opts.CreateLatency,
		fixedIP:        opts.FixedIP,
		floatingIP:     opts.FloatingIP,
		servers:        map[string]*Instance{},
		valid:          map[string]bool{},
		fips:           map[string]map[string]any{},
		validUser:      cmpOr(opts.User, DefaultUser),
		validPass:      cmpOr(opts.Password, DefaultPassword),
		validAC:        [2]string{cmpOr(opts.AppCredID, DefaultAppCredID), cmpOr(opts.AppCredSecret, DefaultAppCredSecret)},
		buildPolls:     opts.BuildPolls,
		flavors: []map[string]any{
			{"id": "f-1", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
			{"id": "f-2", "name": "m1.medium", "ram": 4096, "vcpus": 2, "disk": 40},
		},
		networks: []map[string]any{
			{"id": "ext-net-id", "name": "public", "router:external": true, "status": "ACTIVE"},
			{"id": "ext-net-2", "name": "other-ext", "router:external": true, "status": "ACTIVE"},
		},
	}
	if len(f.regions) == 0 {
		f.regions = []string{"RegionOne"}
	}
	switch {
	case f.buildPolls == 0:
		f.buildPolls = 1
	case f.buildPolls < 0:
		f.buildPolls = 0
	}
	if f.fixedIP == nil {
		f.fixedIP = func(n int) string { return fmt.Sprintf("127.30.%d.%d", n/250, n%250+2) }
	}
	if f.floatingIP == nil {
		f.floatingIP = func(n int) string { return fmt.Sprintf("127.40.%d.%d", n/250, n%250+2) }
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// URL is the Keystone endpoint (the resource section's endpoint).
func (f *Server) URL() string { return f.srv.URL + f.identityPrefix }

// BaseURL is the server's root, without the identity prefix.
func (f *Server) BaseURL() string { return f.srv.URL }

// Close stops the server.
func (f *Server) Close() { f.srv.Close() }

// User and Password are the password credentials the fake accepts.
func (f *Server) User() string     { return f.validUser }
func (f *Server) Password() string { return f.validPass }

// AppCredential is the application credential the fake accepts.
func (f *Server) AppCredential() (id, secret string) { return f.validAC[0], f.validAC[1] }

// SetBuildPolls sets how many GETs of a new server answer BUILD.
func (f *Server) SetBuildPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buildPolls = n
}

// SetBootFault makes new servers go from BUILD to ERROR with this fault
// ("" = boot fine).
func (f *Server) SetBootFault(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bootFault = msg
}

// SetEchoSecrets makes Keystone's 401 quote the request body, to prove a
// client keeps secrets out of its errors whatever the cloud says.
func (f *Server) SetEchoSecrets(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.echoSecrets = on
}

// Inject adds faults.
func (f *Server) Inject(fs ...*Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

// Count returns how many requests matched method and path suffix.
func (f *Server) Count(method, pathSuffix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			n++
		}
	}
	return n
}

// Bodies returns the bodies of the requests matching method and suffix.
func (f *Server) Bodies(method, pathSuffix string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, r := range f.requests {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			out = append(out, r.Body)
		}
	}
	return out
}

// Requests returns every request received, in order.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// Servers returns copies of the servers that exist, by id.
func (f *Server) Servers() []Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Instance, 0, len(f.servers))
	for _, s := range f.servers {
		c := *s
		c.Metadata = make(map[string]string, len(s.Metadata))
		for k, v := range s.Metadata {
			c.Metadata[k] = v
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Created is how many servers were made.
func (f *Server) Created() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

// Live is how many servers exist.
func (f *Server) Live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.servers)
}

// FloatingIPs returns copies of the allocated floating IPs.
func (f *Server) FloatingIPs() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.fips))
	for id := range f.fips {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []map[string]any
	for _, id := range ids {
		c := map[string]any{}
		for k, v := range f.fips[id] {
			c[k] = v
		}
		out = append(out, c)
	}
	return out
}

// SetStatus sets a server's status and task state (and stops its BUILD
// countdown).
func (f *Server) SetStatus(id, status, task string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[id]; ok {
		s.Status, s.TaskState, s.polls = status, task, 1<<30
	}
}

// RevokeTokens expires every token issued so far.
func (f *Server) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

// Kill deletes a server behind the client's back.
func (f *Server) Kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.servers, id)
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, body})
	var hit *Fault
	for _, ft := range f.faults {
		if (ft.Method == "" || ft.Method == r.Method) && strings.HasSuffix(r.URL.Path, ft.Path) && ft.hits < max(ft.Times, 1) {
			ft.hits++
			hit = ft
			break
		}
	}
	f.mu.Unlock()

	if hit != nil && !hit.After {
		if hit.Reset {
			reset(w)
			return
		}
		b := hit.Body
		if b == "" {
			b = fmt.Sprintf(`{"computeFault": {"message": "injected %d", "code": %d}}`, hit.Status, hit.Status)
		}
		writeJSON(w, hit.Status, json.RawMessage(b))
		return
	}
	if hit != nil && hit.After {
		rec := httptest.NewRecorder()
		f.route(rec, r, body)
		reset(w)
		return
	}
	f.route(w, r, body)
}

// reset cuts the connection with a TCP RST: the client sees
// "connection reset by peer" with no answer.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func novaError(w http.ResponseWriter, status int, kind, msg string) {
	writeJSON(w, status, map[string]any{kind: map[string]any{"message": msg, "code": status}})
}

func neutronError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
}

func (f *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	p := r.URL.Path
	if p == f.identityPrefix+"/v3/auth/tokens" && r.Method == http.MethodPost {
		f.token(w, body)
		return
	}
	f.mu.Lock()
	valid := f.valid[r.Header.Get("X-Auth-Token")]
	f.mu.Unlock()
	if !valid {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized", "message": "no token"}})
		return
	}
	for _, region := range f.regions {
		if rest, ok := strings.CutPrefix(p, "/"+region+"/compute/v2.1"); ok {
			f.compute(w, r, region, rest, body)
			return
		}
		if rest, ok := strings.CutPrefix(p, "/"+region+"/network/v2.0"); ok && !f.noNetwork {
			f.network(w, r, rest, body)
			return
		}
	}
	http.NotFound(w, r)
}

func (f *Server) token(w http.ResponseWriter, body []byte) {
	var req struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
					} `json:"user"`
				} `json:"password"`
				AppCred struct {
					ID     string `json:"id"`
					Secret string `json:"secret"`
				} `json:"application_credential"`
			} `json:"identity"`
		} `json:"auth"`
	}
	_ = json.Unmarshal(body, &req)
	id := req.Auth.Identity
	ok := (id.Password.User.Name == f.validUser && id.Password.User.Password == f.validPass) ||
		(id.AppCred.ID == f.validAC[0] && id.AppCred.Secret == f.validAC[1])
	f.mu.Lock()
	echo := f.echoSecrets
	f.mu.Unlock()
	if !ok {
		msg := "The request you have made requires authentication."
		if echo {
			msg += " Request was: " + string(body)
		}
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized", "message": msg}})
		return
	}
	f.mu.Lock()
	f.tokens++
	tok := fmt.Sprintf("tok-%d", f.tokens)
	f.valid[tok] = true
	f.mu.Unlock()
	var catalog []map[string]any
	var computeEPs, networkEPs []map[string]any
	for _, region := range f.regions {
		computeEPs = append(computeEPs,
			map[string]any{"id": "c-int-" + region, "interface": "internal", "region": region, "region_id": region, "url": "http://internal.invalid/compute/v2.1"},
			map[string]any{"id": "c-pub-" + region, "interface": "public", "region": region, "region_id": region, "url": f.srv.URL + "/" + region + "/compute/v2.1"})
		networkEPs = append(networkEPs,
			map[string]any{"id": "n-pub-" + region, "interface": "public", "region": region, "region_id": region, "url": f.srv.URL + "/" + region + "/network"})
	}
	catalog = append(catalog, map[string]any{"id": "svc-compute", "type": "compute", "name": "nova", "endpoints": computeEPs})
	if !f.noNetwork {
		catalog = append(catalog, map[string]any{"id": "svc-network", "type": "network", "name": "neutron", "endpoints": networkEPs})
	}
	catalog = append(catalog, map[string]any{"id": "svc-identity", "type": "identity", "name": "keystone", "endpoints": []map[string]any{
		{"id": "i-pub", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": f.srv.URL + f.identityPrefix + "/v3"},
	}})
	w.Header().Set("X-Subject-Token", tok)
	writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"methods":    id.Methods,
		"expires_at": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		"user":       map[string]any{"id": "u-1", "name": f.validUser, "domain": map[string]any{"id": "default", "name": "Default"}},
		"project":    map[string]any{"id": "proj-1", "name": "demo", "domain": map[string]any{"id": "default", "name": "Default"}},
		"catalog":    catalog,
	}})
}

func (f *Server) serverJSON(s *Instance) map[string]any {
	addrs := []map[string]any{{"addr": s.FixedIP, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}}
	if s.FloatingIP != "" {
		addrs = append(addrs, map[string]any{"addr": s.FloatingIP, "version": 4, "OS-EXT-IPS:type": "floating"})
	}
	var task any
	if s.TaskState != "" {
		task = s.TaskState
	}
	return map[string]any{
		"id": s.ID, "name": s.Name, "status": s.Status, "tenant_id": "proj-1", "user_id": "u-1",
		"metadata":              s.Metadata,
		"addresses":             map[string]any{s.Network: addrs},
		"created":               s.Created.UTC().Format(time.RFC3339),
		"updated":               s.Created.UTC().Format(time.RFC3339),
		"flavor":                map[string]any{"id": s.Request["flavorRef"]},
		"image":                 map[string]any{"id": s.Request["imageRef"]},
		"key_name":              s.Request["key_name"],
		"OS-EXT-STS:task_state": task,
		"OS-EXT-STS:vm_state":   strings.ToLower(s.Status),
		"links":                 []any{},
	}
}

func (f *Server) compute(w http.ResponseWriter, r *http.Request, region, rest string, body []byte) {
	if r.Method == http.MethodPost && rest == "/servers" && f.createLatency > 0 {
		t := time.NewTimer(f.createLatency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && rest == "/flavors/detail":
		writeJSON(w, 200, map[string]any{"flavors": f.flavors})
	case r.Method == http.MethodPost && rest == "/servers":
		var req struct {
			Server map[string]any `json:"server"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Server == nil {
			novaError(w, 400, "badRequest", "Malformed request body")
			return
		}
		known := false
		for _, fl := range f.flavors {
			if fl["id"] == req.Server["flavorRef"] {
				known = true
			}
		}
		if !known {
			novaError(w, 400, "badRequest", "Invalid flavorRef provided.")
			return
		}
		f.seq++
		s := &Instance{
			ID: fmt.Sprintf("srv-%04d", f.seq), Name: fmt.Sprint(req.Server["name"]), Status: "BUILD", Region: region,
			Request: req.Server, FixedIP: f.fixedIP(f.seq), Network: "private", NetworkID: "net-private",
			Metadata: map[string]string{}, polls: f.buildPolls, Created: time.Now(),
		}
		if md, ok := req.Server["metadata"].(map[string]any); ok {
			for k, v := range md {
				s.Metadata[k] = fmt.Sprint(v)
			}
		}
		if nets, ok := req.Server["networks"].([]any); ok && len(nets) > 0 {
			if n, ok := nets[0].(map[string]any); ok && n["uuid"] != nil {
				s.NetworkID = fmt.Sprint(n["uuid"])
			}
		}
		if ud, ok := req.Server["user_data"].(string); ok {
			b, _ := base64.StdEncoding.DecodeString(ud)
			s.UserData = string(b)
		}
		f.created++
		f.servers[s.ID] = s
		writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
			"id": s.ID, "adminPass": "generated-admin-pass", "OS-DCF:diskConfig": "MANUAL",
			"links":           []any{map[string]any{"rel": "self", "href": f.srv.URL + "/" + region + "/compute/v2.1/servers/" + s.ID}},
			"security_groups": []any{map[string]any{"name": "default"}},
		}})
	case r.Method == http.MethodGet && rest == "/servers/detail":
		list := []map[string]any{}
		ids := make([]string, 0, len(f.servers))
		for id, s := range f.servers {
			if s.Region == region {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			list = append(list, f.serverJSON(f.servers[id]))
		}
		writeJSON(w, 200, map[string]any{"servers": list})
	case strings.HasPrefix(rest, "/servers/") && strings.HasSuffix(rest, "/metadata"):
		// Update (merge) a server's metadata, as Nova's
		// POST /servers/{id}/metadata does; answers the whole set.
		id := strings.TrimSuffix(strings.TrimPrefix(rest, "/servers/"), "/metadata")
		s, ok := f.servers[id]
		if !ok || s.Region != region {
			novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
			return
		}
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			Metadata map[string]any `json:"metadata"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Metadata == nil {
			novaError(w, 400, "badRequest", "Malformed request body: metadata wanted")
			return
		}
		for k, v := range req.Metadata {
			str, ok := v.(string)
			if !ok || k == "" || len(k) > 255 || len(str) > 255 {
				novaError(w, 400, "badRequest", "Invalid metadata item "+k)
				return
			}
		}
		for k, v := range req.Metadata {
			s.Metadata[k] = v.(string)
		}
		writeJSON(w, 200, map[string]any{"metadata": s.Metadata})
	case strings.HasPrefix(rest, "/servers/"):
		id := strings.TrimPrefix(rest, "/servers/")
		s, ok := f.servers[id]
		if !ok || s.Region != region {
			novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
			return
		}
		switch r.Method {
		case http.MethodGet:
			if s.Status == "BUILD" {
				if s.polls <= 0 {
					s.Status = "ACTIVE"
					if f.bootFault != "" {
						s.Status = "ERROR"
					}
				}
				s.polls--
			}
			js := f.serverJSON(s)
			if s.Status == "ERROR" {
				js["fault"] = map[string]any{"code": 500, "message": f.bootFault, "created": "2024-01-01T00:00:00Z"}
			}
			writeJSON(w, 200, map[string]any{"server": js})
		case http.MethodDelete:
			delete(f.servers, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	default:
		novaError(w, 404, "itemNotFound", "no route "+r.Method+" "+rest)
	}
}

func (f *Server) network(w http.ResponseWriter, r *http.Request, rest string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && rest == "/networks":
		out := []map[string]any{}
		for _, n := range f.networks {
			if v := q.Get("router:external"); v != "" && fmt.Sprint(n["router:external"]) != v {
				continue
			}
			if v := q.Get("name"); v != "" && n["name"] != v {
				continue
			}
			out = append(out, n)
		}
		writeJSON(w, 200, map[string]any{"networks": out})
	case r.Method == http.MethodGet && rest == "/ports":
		out := []map[string]any{}
		ids := make([]string, 0, len(f.servers))
		for id := range f.servers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			s := f.servers[id]
			if dev := q.Get("device_id"); dev != "" && dev != s.ID {
				continue
			}
			out = append(out, map[string]any{
				"id": "port-" + s.ID, "device_id": s.ID, "device_owner": "compute:nova", "network_id": s.NetworkID,
				"status": "ACTIVE", "fixed_ips": []any{map[string]any{"ip_address": s.FixedIP, "subnet_id": "sub-1"}},
			})
		}
		writeJSON(w, 200, map[string]any{"ports": out})
	case r.Method == http.MethodGet && rest == "/floatingips":
		out := []map[string]any{}
		ids := make([]string, 0, len(f.fips))
		for id := range f.fips {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			v := f.fips[id]
			if d := q.Get("description"); d != "" && v["description"] != d {
				continue
			}
			if pid := q.Get("port_id"); pid != "" && v["port_id"] != pid {
				continue
			}
			out = append(out, v)
		}
		writeJSON(w, 200, map[string]any{"floatingips": out})
	case r.Method == http.MethodPost && rest == "/floatingips":
		var req struct {
			F map[string]any `json:"floatingip"`
		}
		_ = json.Unmarshal(body, &req)
		netID, _ := req.F["floating_network_id"].(string)
		known := false
		for _, n := range f.networks {
			if n["id"] == netID {
				known = true
			}
		}
		if !known {
			neutronError(w, 404, "ExternalGatewayForFloatingIPNotFound", "External network "+netID+" is not reachable")
			return
		}
		f.seq++
		v := map[string]any{
			"id": fmt.Sprintf("fip-%04d", f.seq), "floating_ip_address": f.floatingIP(f.seq),
			"floating_network_id": netID, "description": req.F["description"], "port_id": nil, "fixed_ip_address": nil,
			"status": "DOWN", "project_id": "proj-1", "tenant_id": "proj-1", "router_id": nil,
		}
		f.fips[v["id"].(string)] = v
		writeJSON(w, http.StatusCreated, map[string]any{"floatingip": v})
	case strings.HasPrefix(rest, "/floatingips/"):
		id := strings.TrimPrefix(rest, "/floatingips/")
		v, ok := f.fips[id]
		if !ok {
			neutronError(w, 404, "FloatingIPNotFound", "Floating IP "+id+" could not be found")
			return
		}
		switch r.Method {
		case http.MethodPut:
			var req struct {
				F map[string]any `json:"floatingip"`
			}
			_ = json.Unmarshal(body, &req)
			port, _ := req.F["port_id"].(string)
			sid, found := strings.CutPrefix(port, "port-")
			s := f.servers[sid]
			if !found || s == nil {
				neutronError(w, 404, "PortNotFound", "Port "+port+" could not be found.")
				return
			}
			v["port_id"], v["fixed_ip_address"], v["status"] = port, s.FixedIP, "ACTIVE"
			s.FloatingIP = v["floating_ip_address"].(string)
			writeJSON(w, 200, map[string]any{"floatingip": v})
		case http.MethodDelete:
			for _, s := range f.servers {
				if s.FloatingIP == v["floating_ip_address"] {
					s.FloatingIP = ""
				}
			}
			delete(f.fips, id)
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			writeJSON(w, 200, map[string]any{"floatingip": v})
		}
	default:
		neutronError(w, 404, "HTTPNotFound", "no route "+r.Method+" "+rest)
	}
}

// Launch makes an ACTIVE server in the first region as another client of
// the project would (another orchestrator, Horizon), with the metadata
// given and none of occopus's: used to test taking over servers occopus
// did not make.
func (f *Server) Launch(name string, metadata map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	md := make(map[string]string, len(metadata))
	for k, v := range metadata {
		md[k] = v
	}
	s := &Instance{
		ID: fmt.Sprintf("srv-%04d", f.seq), Name: name, Status: "ACTIVE", Region: f.regions[0],
		Request: map[string]any{"name": name}, FixedIP: f.fixedIP(f.seq), Network: "private", NetworkID: "net-private",
		Metadata: md, Created: time.Now(),
	}
	f.servers[s.ID] = s
	return s.ID
}
