// Package csfake is a fake CloudSigma cloud for tests: it speaks enough of
// the REST API 2.0 (JSON over HTTP, as the CloudSigma documentation's
// request dumps show it) for package cloudsigma: library drives and their
// clone action, drives (get, list, delete), servers (create, get, list,
// start, stop, delete with recurse=all_drives). Objects come in
// {"objects": [...]} envelopes, listings with {"meta": {limit, offset,
// total_count}}; errors are CloudSigma's JSON list of {error_type,
// error_point, error_message}. Paths end in a slash, as the API's do.
//
// Lifecycle as the real cloud's: a clone is cloning_dst for a few GETs,
// then unmounted; a new server is stopped; start makes it starting, then
// running (with an address on its public runtime NIC); stop makes it
// stopping, then stopped; a running server cannot be deleted; a drive
// attached to a server cannot be deleted.
//
// Addresses are in 127.0.0.0/8 (127.60.x.y), so a health check that pings
// them stays on loopback.
//
// Faults (HTTP codes, connection resets, lost answers) are injected per
// request ([Fault]); every request is recorded ([Server.Requests]).
//
// Limits: no ACLs, tags, snapshots, jobs or VLAN/IP objects; references
// (pubkeys, firewall policies, VLANs) are not checked; a drive's size and
// storage type are fixed.
package csfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Credentials the fake accepts unless Options say otherwise.
const (
	DefaultEmail    = "user@example.com"
	DefaultPassword = "cs-pa55-SECRET"
	// LibDrive is the library drive the fake offers.
	LibDrive = "6d53b92c-42dc-472b-a7b6-7021f45c377a"
	// Prefix is where the API lives (the endpoint is URL()+Prefix).
	Prefix = "/api/2.0"
)

// Options configure a Server. The zero value works.
type Options struct {
	Email, Password string
	// ClonePolls is how many GETs of a new clone answer cloning_dst
	// (default 1; negative: none).
	ClonePolls int
	// StartPolls and StopPolls are how many GETs a starting server stays
	// starting, and a stopping one stopping (default 1; negative: none).
	StartPolls, StopPolls int
	// IP gives the address of the n-th server (default 127.60.n/250.n%250+2).
	IP func(n int) string
}

// Drive is what the fake knows of a drive (a copy).
type Drive struct {
	UUID, Name, Status string
	// MountedOn are the servers whose definition uses the drive.
	MountedOn []string
	// Request is the body of the clone action.
	Request map[string]any
	polls   int
}

// Instance is what the fake knows of a server (a copy).
type Instance struct {
	UUID, Name, Status string
	Meta               map[string]string
	// Request is the server object of the create request; UserData the
	// cloud-init decoded from its meta.
	Request  map[string]any
	UserData string
	// Drives are the uuids of the attached drives, in order.
	Drives []string
	IP     string
	polls  int
}

// Request is one request the fake received.
type Request struct {
	Method, Path, Query string
	Body                []byte
}

// Fault answers matching requests instead of (or after) the fake.
type Fault struct {
	Method   string
	Path     string // suffix of the URL path ("" matches any)
	Contains string // part of the URL path ("" matches any)
	Query    string // substring of the raw query ("" matches any)
	Status   int
	Body     string
	Reset    bool // cut the connection (TCP RST) instead of answering
	After    bool // handle the request first; the answer is lost (Reset)
	Times    int  // how many requests it hits (0 = 1)
	hits     int
}

// Server is a fake CloudSigma on an httptest server. It is safe for
// concurrent use.
type Server struct {
	srv *httptest.Server

	email, password string
	ip              func(int) string

	mu         sync.Mutex
	clonePolls int
	startPolls int
	stopPolls  int
	echo       bool
	seq        int
	created    int
	requests   []Request
	faults     []*Fault
	drives     map[string]*Drive
	servers    map[string]*Instance
}

// New starts a fake cloud; Close stops it.
func New(opts Options) *Server {
	f := &Server{
		email: cmpOr(opts.Email, DefaultEmail), password: cmpOr(opts.Password, DefaultPassword),
		ip:         opts.IP,
		clonePolls: polls(opts.ClonePolls), startPolls: polls(opts.StartPolls), stopPolls: polls(opts.StopPolls),
		drives: map[string]*Drive{}, servers: map[string]*Instance{},
	}
	if f.ip == nil {
		f.ip = func(n int) string { return fmt.Sprintf("127.60.%d.%d", n/250, n%250+2) }
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func polls(n int) int {
	switch {
	case n == 0:
		return 1
	case n < 0:
		return 0
	}
	return n
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// URL is the API endpoint (the resource section's endpoint).
func (f *Server) URL() string { return f.srv.URL + Prefix }

// Close stops the server.
func (f *Server) Close() { f.srv.Close() }

// Email and Password are the credentials the fake accepts.
func (f *Server) Email() string    { return f.email }
func (f *Server) Password() string { return f.password }

// SetEchoSecrets makes the 401 answer quote the Authorization header, to
// prove a client keeps secrets out of its errors whatever the cloud says.
func (f *Server) SetEchoSecrets(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.echo = on
}

// SetStartPolls sets how many GETs a starting server stays starting.
func (f *Server) SetStartPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startPolls = polls(n)
}

// Inject adds faults.
func (f *Server) Inject(fs ...*Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

// Requests returns every request received, in order.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Count returns how many requests matched method and path suffix.
func (f *Server) Count(method, pathSuffix string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			n++
		}
	}
	return n
}

// Bodies returns the bodies of the requests matching method and suffix.
func (f *Server) Bodies(method, pathSuffix string) [][]byte {
	var out [][]byte
	for _, r := range f.Requests() {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			out = append(out, r.Body)
		}
	}
	return out
}

// Servers returns copies of the servers that exist, by uuid.
func (f *Server) Servers() []Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Instance, 0, len(f.servers))
	for _, s := range f.servers {
		c := *s
		c.Meta = make(map[string]string, len(s.Meta))
		for k, v := range s.Meta {
			c.Meta[k] = v
		}
		c.Drives = slices.Clone(s.Drives)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out
}

// Drives returns copies of the drives that exist (not the library), by uuid.
func (f *Server) Drives() []Drive {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Drive, 0, len(f.drives))
	for _, d := range f.drives {
		c := *d
		c.MountedOn = slices.Clone(d.MountedOn)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out
}

// AddDrive makes an unmounted drive (a data disk the user owns) and
// returns its uuid.
func (f *Server) AddDrive(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &Drive{UUID: f.newUUID('d'), Name: name, Status: "unmounted"}
	f.drives[d.UUID] = d
	return d.UUID
}

// Created is how many servers were made.
func (f *Server) Created() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

// SetStatus sets a server's status (and stops its countdown).
func (f *Server) SetStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[id]; ok {
		s.Status, s.polls = status, 1<<30
	}
}

// SetDriveStatus sets a drive's status (and stops its countdown).
func (f *Server) SetDriveStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.drives[id]; ok {
		d.Status, d.polls = status, 1<<30
	}
}

// Kill deletes a server and its drives behind the client's back.
func (f *Server) Kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[id]; ok {
		for _, d := range s.Drives {
			delete(f.drives, d)
		}
		delete(f.servers, id)
	}
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	f.mu.Lock()
	f.requests = append(f.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, body})
	var hit *Fault
	for _, ft := range f.faults {
		if (ft.Method == "" || ft.Method == r.Method) && strings.HasSuffix(r.URL.Path, ft.Path) && strings.Contains(r.URL.Path, ft.Contains) &&
			strings.Contains(r.URL.RawQuery, ft.Query) && ft.hits < max(ft.Times, 1) {
			ft.hits++
			hit = ft
			break
		}
	}
	f.mu.Unlock()
	switch {
	case hit != nil && hit.After:
		f.route(httptest.NewRecorder(), r, body)
		reset(w)
	case hit != nil && hit.Reset:
		reset(w)
	case hit != nil:
		if hit.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(hit.Status)
			io.WriteString(w, hit.Body)
			return
		}
		apiError(w, hit.Status, "backend", fmt.Sprintf("injected %d", hit.Status), "")
	default:
		f.route(w, r, body)
	}
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
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// apiError writes CloudSigma's error list.
func apiError(w http.ResponseWriter, status int, typ, msg, point string) {
	var p any
	if point != "" {
		p = point
	}
	writeJSON(w, status, []map[string]any{{"error_type": typ, "error_message": msg, "error_point": p}})
}

func (f *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	email, pass, ok := r.BasicAuth()
	if !ok || email != f.email || pass != f.password {
		f.mu.Lock()
		echo := f.echo
		f.mu.Unlock()
		msg := "Authentication failed."
		if echo {
			msg += " Got: " + r.Header.Get("Authorization") + " " + pass
		}
		apiError(w, http.StatusUnauthorized, "permission", msg, "")
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok || !strings.HasSuffix(p, "/") {
		apiError(w, http.StatusNotFound, "notexist", "no such resource: "+r.URL.Path, "")
		return
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case len(parts) == 3 && parts[0] == "libdrives" && parts[2] == "action" && r.Method == http.MethodPost:
		f.cloneLib(w, parts[1], q.Get("do"), body)
	case len(parts) == 2 && parts[0] == "drives" && parts[1] == "detail" && r.Method == http.MethodGet:
		list := []any{}
		for _, id := range sortedKeys(f.drives) {
			list = append(list, f.driveJSON(f.drives[id]))
		}
		page(w, q, list)
	case len(parts) == 2 && parts[0] == "drives":
		f.drive(w, r.Method, parts[1])
	case len(parts) == 1 && parts[0] == "servers" && r.Method == http.MethodPost:
		f.createServer(w, body)
	case len(parts) == 2 && parts[0] == "servers" && parts[1] == "detail" && r.Method == http.MethodGet:
		list := []any{}
		for _, id := range sortedKeys(f.servers) {
			list = append(list, f.serverJSON(f.servers[id]))
		}
		page(w, q, list)
	case len(parts) == 2 && parts[0] == "servers":
		f.server(w, r.Method, parts[1], q)
	case len(parts) == 3 && parts[0] == "servers" && parts[2] == "action" && r.Method == http.MethodPost:
		f.serverAction(w, parts[1], q.Get("do"))
	default:
		apiError(w, http.StatusNotFound, "notexist", "no route "+r.Method+" "+p, "")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// page answers a listing as the API does: limit (default 20; 0: all) and
// offset, with meta.total_count.
func page(w http.ResponseWriter, q map[string][]string, list []any) {
	limit, offset := 20, 0
	if v := first(q["limit"]); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	if v := first(q["offset"]); v != "" {
		offset, _ = strconv.Atoi(v)
	}
	total := len(list)
	offset = min(max(offset, 0), total)
	end := total
	if limit > 0 {
		end = min(offset+limit, total)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"meta":    map[string]any{"limit": limit, "offset": offset, "total_count": total},
		"objects": list[offset:end],
	})
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (f *Server) newUUID(kind byte) string {
	f.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%c%011d", f.seq, kind, f.seq)
}

func (f *Server) cloneLib(w http.ResponseWriter, lib, do string, body []byte) {
	if lib != LibDrive {
		apiError(w, http.StatusNotFound, "notexist", "Object with uuid "+lib+" does not exist", "")
		return
	}
	if do != "clone" {
		apiError(w, http.StatusBadRequest, "validation", "unknown action "+do, "do")
		return
	}
	req := map[string]any{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			apiError(w, http.StatusBadRequest, "validation", "Malformed JSON: "+err.Error(), "")
			return
		}
	}
	d := &Drive{UUID: f.newUUID('d'), Name: fmt.Sprint(cmpAny(req["name"], "ubuntu-22.04 clone")), Status: "cloning_dst", Request: req, polls: f.clonePolls}
	if d.polls == 0 {
		d.Status = "unmounted"
	}
	f.drives[d.UUID] = d
	writeJSON(w, http.StatusAccepted, map[string]any{"objects": []any{f.driveJSON(d)}})
}

func cmpAny(v any, def string) any {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}

func (f *Server) driveJSON(d *Drive) map[string]any {
	mounted := []any{}
	for _, s := range d.MountedOn {
		mounted = append(mounted, map[string]any{"uuid": s, "resource_uri": Prefix + "/servers/" + s + "/"})
	}
	return map[string]any{
		"uuid": d.UUID, "name": d.Name, "status": d.Status, "media": "disk", "size": 10737418240,
		"storage_type": "dssd", "mounted_on": mounted, "meta": map[string]any{}, "tags": []any{},
		"resource_uri": Prefix + "/drives/" + d.UUID + "/", "affinities": []any{}, "licenses": []any{}, "jobs": []any{},
		"owner": map[string]any{"uuid": "5b4a69a3-8e78-4c45-a8ba-8b13f0895e23", "resource_uri": Prefix + "/user/5b4a69a3-8e78-4c45-a8ba-8b13f0895e23/"},
	}
}

func (f *Server) drive(w http.ResponseWriter, method, id string) {
	d, ok := f.drives[id]
	if !ok {
		apiError(w, http.StatusNotFound, "notexist", "Object with uuid "+id+" does not exist", "")
		return
	}
	switch method {
	case http.MethodGet:
		if d.Status == "cloning_dst" {
			if d.polls <= 0 {
				d.Status = "unmounted"
			}
			d.polls--
		}
		writeJSON(w, http.StatusOK, f.driveJSON(d))
	case http.MethodDelete:
		if len(d.MountedOn) > 0 {
			apiError(w, http.StatusForbidden, "permission", "Cannot delete drive "+id+" attached to server "+d.MountedOn[0], "")
			return
		}
		delete(f.drives, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusMethodNotAllowed, "validation", "method not allowed", "")
	}
}

func (f *Server) createServer(w http.ResponseWriter, body []byte) {
	var req struct {
		Objects []map[string]any `json:"objects"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Objects) != 1 {
		apiError(w, http.StatusBadRequest, "validation", "Expected one object in objects", "objects")
		return
	}
	obj := req.Objects[0]
	for _, k := range []string{"cpu", "mem", "name", "vnc_password"} {
		if _, ok := obj[k]; !ok {
			apiError(w, http.StatusBadRequest, "validation", "This field is required.", k)
			return
		}
	}
	if _, ok := obj["cpu"].(float64); !ok {
		apiError(w, http.StatusBadRequest, "validation", "A valid integer is required.", "cpu")
		return
	}
	s := &Instance{UUID: f.newUUID('s'), Name: fmt.Sprint(obj["name"]), Status: "stopped", Request: obj, Meta: map[string]string{}}
	if m, ok := obj["meta"].(map[string]any); ok {
		for k, v := range m {
			str, ok := v.(string)
			if !ok {
				apiError(w, http.StatusBadRequest, "validation", "Meta values must be strings.", "meta."+k)
				return
			}
			s.Meta[k] = str
		}
	}
	drives, _ := obj["drives"].([]any)
	for i, x := range drives {
		m, _ := x.(map[string]any)
		var id string
		switch v := m["drive"].(type) {
		case string:
			id = v
		case map[string]any:
			id, _ = v["uuid"].(string)
		}
		d, ok := f.drives[id]
		if !ok {
			apiError(w, http.StatusBadRequest, "validation", "Drive with uuid "+id+" does not exist", fmt.Sprintf("drives.%d.drive", i))
			return
		}
		if d.Status != "unmounted" {
			apiError(w, http.StatusBadRequest, "validation", "Drive "+id+" is "+d.Status+" and cannot be attached", fmt.Sprintf("drives.%d.drive", i))
			return
		}
		s.Drives = append(s.Drives, id)
	}
	for _, id := range s.Drives {
		f.drives[id].MountedOn = append(f.drives[id].MountedOn, s.UUID)
	}
	if slices.Contains(strings.Split(s.Meta["base64_fields"], ","), "cloudinit-user-data") {
		b, _ := base64.StdEncoding.DecodeString(s.Meta["cloudinit-user-data"])
		s.UserData = string(b)
	}
	f.created++
	f.servers[s.UUID] = s
	writeJSON(w, http.StatusCreated, map[string]any{"objects": []any{f.serverJSON(s)}})
}

func (f *Server) serverJSON(s *Instance) map[string]any {
	out := map[string]any{}
	for k, v := range s.Request {
		out[k] = v
	}
	meta := map[string]any{}
	for k, v := range s.Meta {
		meta[k] = v
	}
	drives := []any{}
	for i, id := range s.Drives {
		drives = append(drives, map[string]any{"boot_order": i + 1, "dev_channel": fmt.Sprintf("0:%d", i), "device": "virtio",
			"drive": map[string]any{"uuid": id, "resource_uri": Prefix + "/drives/" + id + "/"}})
	}
	out["uuid"], out["name"], out["status"], out["meta"], out["drives"] = s.UUID, s.Name, s.Status, meta, drives
	out["resource_uri"] = Prefix + "/servers/" + s.UUID + "/"
	out["owner"] = map[string]any{"uuid": "5b4a69a3-8e78-4c45-a8ba-8b13f0895e23", "resource_uri": Prefix + "/user/5b4a69a3-8e78-4c45-a8ba-8b13f0895e23/"}
	nics := []any{map[string]any{"ip_v4_conf": map[string]any{"conf": "dhcp", "ip": nil}, "mac": "22:ab:bf:26:e1:be", "model": "virtio", "runtime": nil}}
	var runtime any
	if s.IP != "" {
		rt := map[string]any{"interface_type": "public", "ip_v4": map[string]any{"uuid": s.IP, "resource_uri": Prefix + "/ips/" + s.IP + "/"}, "ip_v6": nil, "mac": "22:ab:bf:26:e1:be"}
		nics[0].(map[string]any)["runtime"] = rt
		runtime = map[string]any{"active_since": "2026-12-01T12:00:00+00:00", "nics": []any{rt,
			map[string]any{"interface_type": "private", "ip_v4": nil, "ip_v6": nil, "mac": "22:9e:e7:d7:86:94"}}}
	}
	out["nics"], out["runtime"] = nics, runtime
	return out
}

func (f *Server) server(w http.ResponseWriter, method, id string, q map[string][]string) {
	s, ok := f.servers[id]
	if !ok {
		apiError(w, http.StatusNotFound, "notexist", "Object with uuid "+id+" does not exist", "")
		return
	}
	switch method {
	case http.MethodGet:
		switch s.Status {
		case "starting":
			if s.polls <= 0 {
				s.Status = "running"
				f.assignIP(s)
			}
			s.polls--
		case "stopping":
			if s.polls <= 0 {
				s.Status, s.IP = "stopped", ""
			}
			s.polls--
		}
		writeJSON(w, http.StatusOK, f.serverJSON(s))
	case http.MethodDelete:
		if s.Status != "stopped" {
			apiError(w, http.StatusForbidden, "permission", "Cannot delete server in status "+s.Status+". Server should be stopped.", "")
			return
		}
		recurse := first(q["recurse"])
		for _, d := range s.Drives {
			if dr, ok := f.drives[d]; ok {
				dr.MountedOn = slices.DeleteFunc(dr.MountedOn, func(x string) bool { return x == id })
				if recurse == "all_drives" || recurse == "disks" {
					delete(f.drives, d)
				}
			}
		}
		delete(f.servers, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusMethodNotAllowed, "validation", "method not allowed", "")
	}
}

func (f *Server) assignIP(s *Instance) {
	f.seq++
	s.IP = f.ip(f.seq)
}

func (f *Server) serverAction(w http.ResponseWriter, id, do string) {
	s, ok := f.servers[id]
	if !ok {
		apiError(w, http.StatusNotFound, "notexist", "Object with uuid "+id+" does not exist", "")
		return
	}
	switch do {
	case "start":
		if s.Status != "stopped" {
			apiError(w, http.StatusForbidden, "permission", fmt.Sprintf("Cannot start guest in state %q. Guest should be in state \"stopped\"", s.Status), "")
			return
		}
		s.Status, s.polls = "starting", f.startPolls
		if s.polls == 0 {
			s.Status = "running"
			f.assignIP(s)
		}
	case "stop":
		if s.Status != "running" && s.Status != "starting" && s.Status != "paused" && s.Status != "unavailable" {
			apiError(w, http.StatusForbidden, "permission", fmt.Sprintf("Cannot stop guest in state %q. Guest should be in state \"running\"", s.Status), "")
			return
		}
		s.Status, s.polls = "stopping", f.stopPolls
		if s.polls == 0 {
			s.Status, s.IP = "stopped", ""
		}
	default:
		apiError(w, http.StatusBadRequest, "validation", "unknown action "+do, "do")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"action": do, "result": "success", "uuid": id})
}
