package nova

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCloud speaks enough of Keystone v3, Nova v2.1 and Neutron v2.0 (JSON
// over HTTP, as gophercloud sends and expects it) for the handler: token
// creation with a catalog, flavors, servers (create, get, list detail,
// delete), external networks, ports and floating IPs. Faults (HTTP codes,
// connection resets, lost answers) are injected per request.
//
// Limits: no pagination links, no microversions, no policy; a server's
// port exists as soon as the server does; deletes take effect at once.
type fakeCloud struct {
	t   *testing.T
	srv *httptest.Server

	// identityPrefix is where Keystone lives ("" or e.g. "/identity").
	identityPrefix string
	// regions of the catalog; each has its compute and network endpoint
	// under /<region>/compute/v2.1 and /<region>/network.
	regions []string
	// noNetwork leaves the network service out of the catalog.
	noNetwork bool
	// buildPolls is how many GETs of a server answer BUILD before ACTIVE.
	buildPolls int
	// echoSecrets makes Keystone's 401 quote the request body, to prove
	// the handler keeps secrets out of its errors whatever the cloud says.
	echoSecrets bool
	// bootFault makes servers go from BUILD to ERROR with this fault.
	bootFault string

	mu        sync.Mutex
	seq       int
	requests  []fakeRequest
	faults    []*fault
	servers   map[string]*fakeServer
	fips      map[string]map[string]any
	flavors   []map[string]any
	networks  []map[string]any
	tokens    int
	valid     map[string]bool // issued, not revoked tokens
	validUser string
	validPass string
	validAC   [2]string
}

type fakeRequest struct {
	Method, Path, Query string
	Body                []byte
}

type fakeServer struct {
	ID, Name, Status, TaskState string
	Region                      string
	Metadata                    map[string]string
	Request                     map[string]any // the "server" object of the create body
	FixedIP                     string
	FloatingIP                  string
	Network                     string
	polls                       int
	Created                     time.Time
}

// fault answers matching requests instead of (or after) the fake.
type fault struct {
	Method string
	Path   string // suffix of the URL path
	Status int
	Body   string
	Reset  bool // cut the connection (TCP RST) instead of answering
	After  bool // handle the request first; the answer is lost (Reset)
	Times  int  // how many requests it hits (0 = 1)
	hits   int
}

func newFake(t *testing.T) *fakeCloud {
	f := &fakeCloud{
		t:          t,
		regions:    []string{"RegionOne"},
		servers:    map[string]*fakeServer{},
		valid:      map[string]bool{},
		fips:       map[string]map[string]any{},
		validUser:  "alice",
		validPass:  "pa55-w0rd-SECRET",
		validAC:    [2]string{"ac-0123", "ac-SECRET-xyz"},
		buildPolls: 1,
		flavors: []map[string]any{
			{"id": "f-1", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
			{"id": "f-2", "name": "m1.medium", "ram": 4096, "vcpus": 2, "disk": 40},
		},
		networks: []map[string]any{
			{"id": "ext-net-id", "name": "public", "router:external": true, "status": "ACTIVE"},
			{"id": "ext-net-2", "name": "other-ext", "router:external": true, "status": "ACTIVE"},
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCloud) URL() string { return f.srv.URL + f.identityPrefix }

func (f *fakeCloud) inject(fs ...*fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

// count returns how many requests matched method and path suffix.
func (f *fakeCloud) count(method, pathSuffix string) int {
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

// bodies returns the bodies of the requests matching method and suffix.
func (f *fakeCloud) bodies(method, pathSuffix string) [][]byte {
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

func (f *fakeCloud) all() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakeCloud) liveServers() []*fakeServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*fakeServer
	for _, s := range f.servers {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *fakeCloud) floatingIPs() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, v := range f.fips {
		out = append(out, v)
	}
	return out
}

func (f *fakeCloud) setStatus(id, status, task string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[id]; ok {
		s.Status, s.TaskState, s.polls = status, task, 1<<30
	}
}

// revokeTokens expires every token issued so far.
func (f *fakeCloud) revokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

// kill deletes a server behind the handler's back.
func (f *fakeCloud) kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.servers, id)
}

func (f *fakeCloud) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{r.Method, r.URL.Path, r.URL.RawQuery, body})
	var hit *fault
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

func (f *fakeCloud) route(w http.ResponseWriter, r *http.Request, body []byte) {
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

func (f *fakeCloud) token(w http.ResponseWriter, body []byte) {
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
	if !ok {
		msg := "The request you have made requires authentication."
		if f.echoSecrets {
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

func (f *fakeCloud) serverJSON(s *fakeServer) map[string]any {
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

func (f *fakeCloud) compute(w http.ResponseWriter, r *http.Request, region, rest string, body []byte) {
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
		s := &fakeServer{
			ID: fmt.Sprintf("srv-%04d", f.seq), Name: fmt.Sprint(req.Server["name"]), Status: "BUILD", Region: region,
			Request: req.Server, FixedIP: fmt.Sprintf("10.0.0.%d", f.seq+10), Network: "private",
			Metadata: map[string]string{}, polls: f.buildPolls, Created: time.Now(),
		}
		if md, ok := req.Server["metadata"].(map[string]any); ok {
			for k, v := range md {
				s.Metadata[k] = fmt.Sprint(v)
			}
		}
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

func (f *fakeCloud) network(w http.ResponseWriter, r *http.Request, rest string, body []byte) {
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
				"id": "port-" + s.ID, "device_id": s.ID, "device_owner": "compute:nova", "network_id": "net-private",
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
			"id": fmt.Sprintf("fip-%04d", f.seq), "floating_ip_address": fmt.Sprintf("192.0.2.%d", f.seq),
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
