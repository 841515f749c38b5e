// Package cheffake is a fake Chef Infra Server for tests: one
// organization on an httptest server (loopback only) that speaks the
// Chef Server API as a real server does, so the code under test runs
// go-chef's signing and its error handling against it.
//
// Every request is authenticated as Chef Server authenticates it (Mixlib
// authentication): the X-Ops-* headers must be present, the timestamp
// within 15 minutes of the fake's wall clock, the content hash must be the
// body's, and the signature must verify with the public key of the client
// named by X-Ops-UserId, under protocol 1.3 (RSA PKCS#1 v1.5 over the
// SHA-256 of the canonical request) or, when Options.Version asks for it,
// 1.0 (RSA "private encrypt" of the canonical request, SHA-1 hashes).
// Anything else is 401 with Chef's message; a client may be denied an
// operation (403, "missing create permission"); another organization is
// 404 ("organization 'x' does not exist.").
//
// It implements /environments (with /environments/NAME/nodes), /roles,
// /nodes and /clients: list (GET), create (POST: 201, 409 when the name is
// taken), read (GET, HEAD: 404 when missing), replace (PUT: 404 when
// missing, 400 when the body names another object), delete (DELETE: the
// object; the _default environment cannot be deleted, 405). Bodies are
// bounded (1,000,000 bytes, Chef's limit: 413) and so is the number of
// objects of each kind.
//
// As chef-client on a booted VM would, the fake "converges" a node some
// time after it appears (Options.ConvergeAfter on the Options.Now clock):
// it gives the node automatic attributes with ohai_time and registers a
// client named after the node. Server.SetFreeze stops that, to hold nodes
// unconverged.
//
// What the fake does not model: search, cookbooks, data bags, ACLs beyond
// a per-client deny list, users, API versioning, run-list expansion,
// environment checks on node saves, and the exact HTML of a real server's
// unknown routes (it answers them with a JSON 404).
package cheffake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultOrg           = "occopus"
	DefaultConvergeAfter = time.Second
	// MaxBody is Chef Server's limit on a request body.
	MaxBody = 1000000
	// MaxObjects bounds the objects of each kind in the fake.
	MaxObjects = 10000
	// MaxSkew is how far X-Ops-Timestamp may be from the fake's wall clock.
	MaxSkew = 15 * time.Minute
)

// Options configure a Server. The zero value works.
type Options struct {
	// Org is the only organization served (default DefaultOrg).
	Org string
	// Version is the signing protocol accepted: "1.3" (the default) or
	// "1.0", as an old server.
	Version string
	// ConvergeAfter is how long after a node appears it converges
	// (default DefaultConvergeAfter; negative: at once).
	ConvergeAfter time.Duration
	// Now is the clock of converges (default time.Now). Signature
	// timestamps are checked against the wall clock, whatever Now is.
	Now func() time.Time
}

// Node is what the fake holds of a node (a copy).
type Node struct {
	Name        string
	Environment string
	RunList     []string
	Normal      map[string]any
	Automatic   map[string]any
	// Converged is when the fake's "chef-client" ran; zero until then.
	Converged time.Time
}

// client is an API client of the organization.
type client struct {
	pub  *rsa.PublicKey // nil: cannot authenticate (a node's own client)
	deny map[string]bool
}

type object struct {
	doc       map[string]any
	appeared  time.Time // nodes: when made (the converge clock)
	converged time.Time // nodes: when "chef-client" ran; zero until then
}

// Server is a fake Chef Infra Server. It is safe for concurrent use.
type Server struct {
	srv           *httptest.Server
	org           string
	version       string
	convergeAfter time.Duration
	now           func() time.Time

	mu      sync.Mutex
	clients map[string]*client
	objs    map[string]map[string]*object // kind (nodes, roles, environments, clients) → name → object
	freeze  bool
	writes  map[string]int // "POST nodes", "DELETE roles", ...
	reqs    int
	refused int // 401s
	byVer   map[string]int
	faults  []fault
}

type fault struct {
	status int
	msg    string
	times  int
}

// New starts a fake server; Close stops it.
func New(opts Options) *Server {
	s := &Server{org: opts.Org, version: opts.Version, convergeAfter: opts.ConvergeAfter, now: opts.Now,
		clients: map[string]*client{}, writes: map[string]int{}, byVer: map[string]int{},
		objs: map[string]map[string]*object{"nodes": {}, "roles": {}, "environments": {}, "clients": {}}}
	if s.org == "" {
		s.org = DefaultOrg
	}
	if s.version == "" {
		s.version = "1.3"
	}
	if s.convergeAfter == 0 {
		s.convergeAfter = DefaultConvergeAfter
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.objs["environments"]["_default"] = &object{doc: environmentDoc("_default", "The default Chef environment")}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the organization's endpoint: http://127.0.0.1:port/organizations/ORG.
func (s *Server) URL() string { return s.srv.URL + "/organizations/" + s.org }

// Root is the server's URL without the organization.
func (s *Server) Root() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddClient makes an API client that signs with the private key of pub,
// denied the operations named ("read", "create", "update", "delete").
func (s *Server) AddClient(name string, pub *rsa.PublicKey, deny ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]bool{}
	for _, op := range deny {
		d[op] = true
	}
	s.clients[name] = &client{pub: pub, deny: d}
	s.objs["clients"][name] = &object{doc: clientDoc(name, s.org)}
}

// NewClient makes a client with a fresh 2048-bit key and returns the key
// as PEM (what auth_data's client_key holds).
func (s *Server) NewClient(name string, deny ...string) string {
	key, pemKey := GenerateKey()
	s.AddClient(name, &key.PublicKey, deny...)
	return pemKey
}

// GenerateKey makes an RSA key and its PKCS#1 PEM form.
func GenerateKey() (*rsa.PrivateKey, string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("cheffake: generate a key: %v", err))
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// SetFreeze stops (true) or resumes converges.
func (s *Server) SetFreeze(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freeze = on
}

// Fail answers the next n requests (after authentication) with status
// and Chef's error document holding msg, doing nothing.
func (s *Server) Fail(n, status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: status, msg: msg, times: n})
}

// Nodes returns the nodes by name.
func (s *Server) Nodes() map[string]Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.convergeLocked()
	out := map[string]Node{}
	for name, o := range s.objs["nodes"] {
		doc := copyDoc(o.doc)
		n := Node{Name: name, Environment: str(doc["chef_environment"]), Normal: mapOf(doc["normal"]),
			Automatic: mapOf(doc["automatic"]), Converged: o.converged}
		for _, it := range listOf(doc["run_list"]) {
			n.RunList = append(n.RunList, str(it))
		}
		out[name] = n
	}
	return out
}

// Names lists the objects of a kind (nodes, roles, environments, clients),
// sorted.
func (s *Server) Names(kind string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.convergeLocked()
	return slices.Sorted(maps.Keys(s.objs[kind]))
}

// Object returns a copy of one object, nil when missing.
func (s *Server) Object(kind, name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.convergeLocked()
	o, ok := s.objs[kind][name]
	if !ok {
		return nil
	}
	return copyDoc(o.doc)
}

// Writes counts the requests that changed something (POST, PUT, DELETE
// answered 2xx), in total.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.writes {
		n += c
	}
	return n
}

// WritesOf counts the changing requests by "METHOD kind" ("POST nodes").
func (s *Server) WritesOf() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.writes)
}

// Requests counts every request received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

// Refused counts the requests answered 401.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Accepted counts the authenticated requests by protocol version.
func (s *Server) Accepted() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byVer)
}

// convergeLocked plays chef-client for every node whose time has come.
func (s *Server) convergeLocked() {
	if s.freeze {
		return
	}
	now := s.now()
	for name, o := range s.objs["nodes"] {
		if !o.converged.IsZero() || now.Before(o.appeared.Add(s.convergeAfter)) {
			continue
		}
		o.converged = now
		auto := mapOf(o.doc["automatic"])
		auto["ohai_time"] = float64(now.UnixNano()) / 1e9
		auto["fqdn"] = name + ".fake.internal"
		auto["hostname"] = name
		auto["platform"] = "ubuntu"
		o.doc["automatic"] = auto
		if _, ok := s.objs["clients"][name]; !ok && len(s.objs["clients"]) < MaxObjects {
			s.objs["clients"][name] = &object{doc: clientDoc(name, s.org)}
			s.clients[name] = &client{deny: map[string]bool{}}
		}
	}
}

// chefError writes Chef's error document.
func chefError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": []string{msg}})
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	w.Write(b)
}

var orgPath = regexp.MustCompile(`^/organizations/([^/]+)(/.*)?$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs++
	if err != nil {
		chefError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	if len(body) > MaxBody {
		chefError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("JSON must be no more than %d bytes.", MaxBody))
		return
	}
	m := orgPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		chefError(w, http.StatusNotFound, "Not Found")
		return
	}
	if m[1] != s.org {
		chefError(w, http.StatusNotFound, fmt.Sprintf("organization '%s' does not exist.", m[1]))
		return
	}
	user, status, msg := s.authenticate(r, body)
	if status != 0 {
		if status == http.StatusUnauthorized {
			s.refused++
		}
		chefError(w, status, msg)
		return
	}
	op := map[string]string{http.MethodGet: "read", http.MethodHead: "read", http.MethodPost: "create",
		http.MethodPut: "update", http.MethodDelete: "delete"}[r.Method]
	if op == "" {
		chefError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	if s.clients[user].deny[op] {
		chefError(w, http.StatusForbidden, "missing "+op+" permission")
		return
	}
	if len(s.faults) > 0 {
		f := &s.faults[0]
		f.times--
		if f.times <= 0 {
			s.faults = s.faults[1:]
		}
		chefError(w, f.status, f.msg)
		return
	}
	s.convergeLocked()
	s.route(w, r, strings.Trim(m[2], "/"), body)
}

// authenticate checks the Mixlib signature; status 0 is success.
func (s *Server) authenticate(r *http.Request, body []byte) (user string, status int, msg string) {
	h := r.Header
	var missing []string
	for _, k := range []string{"X-Ops-Sign", "X-Ops-UserId", "X-Ops-Timestamp", "X-Ops-Content-Hash", "X-Ops-Authorization-1"} {
		if h.Get(k) == "" {
			missing = append(missing, "'"+k+"'")
		}
	}
	if len(missing) > 0 {
		return "", http.StatusUnauthorized, "missing required authentication header(s) " + strings.Join(missing, ", ")
	}
	user = h.Get("X-Ops-UserId")
	sign := map[string]string{}
	for _, kv := range strings.Split(h.Get("X-Ops-Sign"), ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		sign[k] = v
	}
	ver := sign["version"]
	if ver != s.version {
		return "", http.StatusUnauthorized, fmt.Sprintf("Unsupported authentication protocol version: %q (this server takes %s)", ver, s.version)
	}
	if alg := sign["algorithm"]; alg != "" && alg != map[string]string{"1.0": "sha1", "1.3": "sha256"}[ver] {
		return "", http.StatusUnauthorized, fmt.Sprintf("Unsupported signing algorithm %q for protocol %s", alg, ver)
	}
	ts, err := time.Parse(time.RFC3339, h.Get("X-Ops-Timestamp"))
	if err != nil {
		return "", http.StatusUnauthorized, "Failed to authenticate: malformed X-Ops-Timestamp"
	}
	if d := time.Since(ts); d > MaxSkew || d < -MaxSkew {
		return "", http.StatusUnauthorized, "Failed to authenticate: request timestamp is too far from the server's clock (clock skew)"
	}
	var hash string
	if ver == "1.3" {
		sum := sha256.Sum256(body)
		hash = base64.StdEncoding.EncodeToString(sum[:])
	} else {
		sum := sha1.Sum(body)
		hash = base64.StdEncoding.EncodeToString(sum[:])
	}
	if h.Get("X-Ops-Content-Hash") != hash {
		return "", http.StatusUnauthorized, "Failed to authenticate: the content hash does not match the body"
	}
	c, ok := s.clients[user]
	if !ok || c.pub == nil {
		return "", http.StatusUnauthorized, fmt.Sprintf("Failed to authenticate as '%s'. Ensure that your node_name and client key are correct.", user)
	}
	var sig strings.Builder
	for i := 1; ; i++ {
		part := h.Get("X-Ops-Authorization-" + strconv.Itoa(i))
		if part == "" {
			break
		}
		sig.WriteString(part)
	}
	raw, err := base64.StdEncoding.DecodeString(sig.String())
	if err != nil {
		return "", http.StatusUnauthorized, fmt.Sprintf("Invalid signature for user or client '%s'", user)
	}
	p := path.Clean(r.URL.Path)
	if ver == "1.3" {
		canon := strings.Join([]string{"Method:" + strings.ToUpper(r.Method), "Path:" + p, "X-Ops-Content-Hash:" + hash,
			"X-Ops-Sign:version=1.3", "X-Ops-Timestamp:" + h.Get("X-Ops-Timestamp"), "X-Ops-UserId:" + user,
			"X-Ops-Server-API-Version:" + h.Get("X-Ops-Server-API-Version")}, "\n")
		sum := sha256.Sum256([]byte(canon))
		err = rsa.VerifyPKCS1v15(c.pub, crypto.SHA256, sum[:], raw)
	} else {
		ph := sha1.Sum([]byte(p))
		canon := strings.Join([]string{"Method:" + strings.ToUpper(r.Method), "Hashed Path:" + base64.StdEncoding.EncodeToString(ph[:]),
			"X-Ops-Content-Hash:" + hash, "X-Ops-Timestamp:" + h.Get("X-Ops-Timestamp"), "X-Ops-UserId:" + user}, "\n")
		// Protocol 1.0 "encrypts" the canonical request itself with the
		// private key: PKCS#1 v1.5 type 1 padding, no digest.
		err = rsa.VerifyPKCS1v15(c.pub, crypto.Hash(0), []byte(canon), raw)
	}
	if err != nil {
		return "", http.StatusUnauthorized, fmt.Sprintf("Invalid signature for user or client '%s'", user)
	}
	s.byVer[ver]++
	return user, 0, ""
}

var (
	nameRE = map[string]*regexp.Regexp{
		"nodes":        regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`),
		"roles":        regexp.MustCompile(`^[A-Za-z0-9_.-]+$`),
		"environments": regexp.MustCompile(`^[A-Za-z0-9_-]+$`),
		"clients":      regexp.MustCompile(`^[A-Za-z0-9_.-]+$`),
	}
	runListItem = regexp.MustCompile(`^(recipe|role)\[[^\]\[]+\]$`)
	singular    = map[string]string{"nodes": "node", "roles": "role", "environments": "environment", "clients": "client"}
	capital     = map[string]string{"nodes": "Node", "roles": "Role", "environments": "Environment", "clients": "Client"}
)

func (s *Server) route(w http.ResponseWriter, r *http.Request, rest string, body []byte) {
	parts := strings.Split(rest, "/")
	kind := parts[0]
	if _, ok := s.objs[kind]; !ok || len(parts) > 3 {
		chefError(w, http.StatusNotFound, "Not Found")
		return
	}
	switch {
	case len(parts) == 1:
		switch r.Method {
		case http.MethodGet:
			list := map[string]string{}
			for name := range s.objs[kind] {
				list[name] = s.URL() + "/" + kind + "/" + name
			}
			writeJSON(w, http.StatusOK, list)
		case http.MethodPost:
			s.create(w, kind, body)
		default:
			chefError(w, http.StatusMethodNotAllowed, "Method not allowed")
		}
	case len(parts) == 2:
		s.one(w, r, kind, parts[1], body)
	case kind == "environments" && parts[2] == "nodes" && r.Method == http.MethodGet:
		if _, ok := s.objs[kind][parts[1]]; !ok {
			chefError(w, http.StatusNotFound, fmt.Sprintf("Cannot load environment %s", parts[1]))
			return
		}
		list := map[string]string{}
		for name, o := range s.objs["nodes"] {
			if str(o.doc["chef_environment"]) == parts[1] {
				list[name] = s.URL() + "/nodes/" + name
			}
		}
		writeJSON(w, http.StatusOK, list)
	default:
		chefError(w, http.StatusNotFound, "Not Found")
	}
}

// decode reads a request body: a JSON object valid for kind.
func decode(kind string, body []byte) (map[string]any, string) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, "Incorrect JSON type for request body"
	}
	name := str(doc["name"])
	if kind == "clients" && name == "" {
		name = str(doc["clientname"])
		doc["name"] = name
	}
	if !nameRE[kind].MatchString(name) {
		return nil, "Field 'name' invalid"
	}
	if rl, ok := doc["run_list"]; ok && rl != nil {
		items, ok := rl.([]any)
		if !ok {
			return nil, "Field 'run_list' is not a valid run list"
		}
		for _, it := range items {
			if s, ok := it.(string); !ok || !runListItem.MatchString(s) {
				return nil, "Field 'run_list' is not a valid run list"
			}
		}
	}
	return doc, ""
}

func (s *Server) create(w http.ResponseWriter, kind string, body []byte) {
	doc, bad := decode(kind, body)
	if bad != "" {
		chefError(w, http.StatusBadRequest, bad)
		return
	}
	name := str(doc["name"])
	if _, ok := s.objs[kind][name]; ok {
		chefError(w, http.StatusConflict, capital[kind]+" already exists")
		return
	}
	if len(s.objs[kind]) >= MaxObjects {
		chefError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the fake holds %d %s already", MaxObjects, kind))
		return
	}
	o := &object{doc: normalise(kind, doc, s.org), appeared: s.now()}
	s.objs[kind][name] = o
	if kind == "clients" {
		s.clients[name] = &client{deny: map[string]bool{}}
		if k, ok := doc["public_key"].(string); ok {
			if pub, err := parsePublicKey(k); err == nil {
				s.clients[name].pub = pub
			}
		}
	}
	s.writes["POST "+kind]++
	writeJSON(w, http.StatusCreated, map[string]string{"uri": s.URL() + "/" + kind + "/" + name})
}

func (s *Server) one(w http.ResponseWriter, r *http.Request, kind, name string, body []byte) {
	o, ok := s.objs[kind][name]
	if !ok && r.Method != http.MethodPost {
		chefError(w, http.StatusNotFound, fmt.Sprintf("Cannot load %s %s", singular[kind], name))
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, o.doc)
	case http.MethodHead:
		w.WriteHeader(http.StatusOK)
	case http.MethodPut:
		if kind == "environments" && name == "_default" {
			chefError(w, http.StatusMethodNotAllowed, "The '_default' environment cannot be modified.")
			return
		}
		doc, bad := decode(kind, body)
		if bad != "" {
			chefError(w, http.StatusBadRequest, bad)
			return
		}
		if str(doc["name"]) != name {
			chefError(w, http.StatusBadRequest, capital[kind]+" name mismatch.")
			return
		}
		// PUT replaces the object, as Chef Server does.
		o.doc = normalise(kind, doc, s.org)
		s.writes["PUT "+kind]++
		writeJSON(w, http.StatusOK, o.doc)
	case http.MethodDelete:
		if kind == "environments" && name == "_default" {
			chefError(w, http.StatusMethodNotAllowed, "The '_default' environment cannot be modified.")
			return
		}
		delete(s.objs[kind], name)
		if kind == "clients" {
			delete(s.clients, name)
		}
		s.writes["DELETE "+kind]++
		writeJSON(w, http.StatusOK, o.doc)
	default:
		chefError(w, http.StatusMethodNotAllowed, "Method not allowed")
	}
}

// normalise fills the fields Chef Server fills in an object it stores.
func normalise(kind string, doc map[string]any, org string) map[string]any {
	out := copyDoc(doc)
	def := func(k string, v any) {
		if out[k] == nil {
			out[k] = v
		}
	}
	switch kind {
	case "nodes":
		def("chef_environment", "_default")
		def("json_class", "Chef::Node")
		def("chef_type", "node")
		def("run_list", []any{})
		for _, k := range []string{"normal", "default", "override", "automatic"} {
			def(k, map[string]any{})
		}
	case "roles":
		def("json_class", "Chef::Role")
		def("chef_type", "role")
		def("description", "")
		def("run_list", []any{})
		def("env_run_lists", map[string]any{})
		def("default_attributes", map[string]any{})
		def("override_attributes", map[string]any{})
	case "environments":
		def("json_class", "Chef::Environment")
		def("chef_type", "environment")
		def("description", "")
		def("cookbook_versions", map[string]any{})
		def("default_attributes", map[string]any{})
		def("override_attributes", map[string]any{})
	case "clients":
		out = clientDoc(str(doc["name"]), org)
	}
	return out
}

func environmentDoc(name, descr string) map[string]any {
	return normalise("environments", map[string]any{"name": name, "description": descr}, "")
}

func clientDoc(name, org string) map[string]any {
	return map[string]any{"name": name, "clientname": name, "orgname": org, "validator": false,
		"json_class": "Chef::ApiClient", "chef_type": "client"}
}

func parsePublicKey(s string) (*rsa.PublicKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	if k, err := x509.ParsePKIXPublicKey(b.Bytes); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
	}
	return x509.ParsePKCS1PublicKey(b.Bytes)
}

// copyDoc copies a JSON document deeply.
func copyDoc(doc map[string]any) map[string]any {
	b, _ := json.Marshal(doc)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func mapOf(v any) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		return map[string]any{}
	}
	return m
}

func listOf(v any) []any { l, _ := v.([]any); return l }
