// Package cbfake is a fake CloudBroker platform for tests: it speaks
// enough of CloudBroker's REST API (XML as Rails renders it: dashed
// element names, type="array" lists, nil="true" empty values, validation
// errors as <errors><error>…</error></errors>) for package cloudbroker:
// POST /instances.xml, GET /instances.xml, GET /instances/{id}.xml,
// PUT /instances/{id}/stop and GET /instances/{id}/costs.xml.
//
// Lifecycle: a new instance is starting for a few GETs, then running with
// its addresses; a stopped one is stopping, then halted, and stays listed
// (the platform keeps its history). Addresses are in 127.0.0.0/8
// (internal 127.70.x.y, external 127.71.x.y), so a health check that
// pings them stays on loopback.
//
// Costs: every instance has fees Instance, Storage and Total (EUR) unless
// SetFees says otherwise, as <instance-costs><fees type="array"><fee>
// <name/><value type="decimal"/><currency/></fee>…</fees></instance-costs>
// (a shape of this fake's: the platform's documentation is not public).
//
// Faults (HTTP codes, connection resets, lost answers) are injected per
// request ([Fault]); every request is recorded ([Server.Requests]).
//
// Limits: deployments, instance types and key pairs are not checked
// (any non-empty id is taken); no jobs, data files or regions.
package cbfake

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Credentials the fake accepts unless Options say otherwise.
const (
	DefaultEmail    = "broker@example.com"
	DefaultPassword = "cb-pa55-SECRET"
)

// Options configure a Server. The zero value works.
type Options struct {
	Email, Password string
	// StartPolls and StopPolls are how many GETs an instance stays
	// starting, and stopping (default 1; negative: none).
	StartPolls, StopPolls int
}

// Fee is one fee of an instance's costs.
type Fee struct {
	Name, Value, Currency string
}

// Instance is what the fake knows of an instance (a copy).
type Instance struct {
	ID, Name, Status string
	// Fields are the elements of the create request, by name; UserData
	// is cloud-init decoded (when cloud-init-b64 is true).
	Fields     map[string]string
	UserData   string
	InternalIP string
	ExternalIP string
	Fees       []Fee
	Created    time.Time
	polls      int
}

// Request is one request the fake received.
type Request struct {
	Method, Path, Query string
	ContentType         string
	Body                []byte
}

// Fault answers matching requests instead of (or after) the fake.
type Fault struct {
	Method   string
	Path     string // suffix of the URL path ("" matches any)
	Contains string // part of the URL path ("" matches any)
	Status   int
	Body     string
	Reset    bool // cut the connection (TCP RST) instead of answering
	After    bool // handle the request first; the answer is lost (Reset)
	Times    int  // how many requests it hits (0 = 1)
	hits     int
}

// Server is a fake CloudBroker platform on an httptest server. It is safe
// for concurrent use.
type Server struct {
	srv             *httptest.Server
	email, password string
	startPolls      int
	stopPolls       int

	mu        sync.Mutex
	echo      bool
	seq       int
	ips       int
	created   int
	requests  []Request
	faults    []*Fault
	instances map[string]*Instance
}

// New starts a fake platform; Close stops it.
func New(opts Options) *Server {
	f := &Server{
		email: cmpOr(opts.Email, DefaultEmail), password: cmpOr(opts.Password, DefaultPassword),
		startPolls: polls(opts.StartPolls), stopPolls: polls(opts.StopPolls),
		instances: map[string]*Instance{},
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

// URL is the platform's endpoint.
func (f *Server) URL() string { return f.srv.URL }

// Close stops the server.
func (f *Server) Close() { f.srv.Close() }

// Email and Password are the credentials the fake accepts.
func (f *Server) Email() string    { return f.email }
func (f *Server) Password() string { return f.password }

// SetEchoSecrets makes the 401 answer quote the Authorization header.
func (f *Server) SetEchoSecrets(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.echo = on
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

// Instances returns copies of every instance, halted ones included, by id.
func (f *Server) Instances() []Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Instance, 0, len(f.instances))
	for _, in := range f.instances {
		c := *in
		c.Fields = make(map[string]string, len(in.Fields))
		for k, v := range in.Fields {
			c.Fields[k] = v
		}
		c.Fees = slices.Clone(in.Fees)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Live returns the instances neither stopping nor halted.
func (f *Server) Live() []Instance {
	var out []Instance
	for _, in := range f.Instances() {
		if in.Status != "stopping" && in.Status != "halted" {
			out = append(out, in)
		}
	}
	return out
}

// Created is how many instances were made.
func (f *Server) Created() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

// SetStatus sets an instance's status (and stops its countdown).
func (f *Server) SetStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in, ok := f.instances[id]; ok {
		in.Status, in.polls = status, 1<<30
	}
}

// SetFees sets an instance's fees.
func (f *Server) SetFees(id string, fees ...Fee) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in, ok := f.instances[id]; ok {
		in.Fees = fees
	}
}

// Kill halts an instance behind the client's back.
func (f *Server) Kill(id string) { f.SetStatus(id, "halted") }

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	f.mu.Lock()
	f.requests = append(f.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), body})
	var hit *Fault
	for _, ft := range f.faults {
		if (ft.Method == "" || ft.Method == r.Method) && strings.HasSuffix(r.URL.Path, ft.Path) &&
			strings.Contains(r.URL.Path, ft.Contains) && ft.hits < max(ft.Times, 1) {
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
			w.Header().Set("Content-Type", "application/xml; charset=utf-8")
			w.WriteHeader(hit.Status)
			io.WriteString(w, hit.Body)
			return
		}
		railsError(w, hit.Status, fmt.Sprintf("injected %d", hit.Status))
	default:
		f.route(w, r, body)
	}
}

// reset cuts the connection with a TCP RST.
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

func writeXML(w http.ResponseWriter, status int, doc string) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header+doc)
}

// railsError writes Rails' error document.
func railsError(w http.ResponseWriter, status int, msgs ...string) {
	var b strings.Builder
	b.WriteString("<errors>\n")
	for _, m := range msgs {
		b.WriteString("  <error>" + esc(m) + "</error>\n")
	}
	b.WriteString("</errors>\n")
	writeXML(w, status, b.String())
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (f *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	email, pass, ok := r.BasicAuth()
	if !ok || email != f.email || pass != f.password {
		f.mu.Lock()
		echo := f.echo
		f.mu.Unlock()
		msg := "Access denied: wrong e-mail or password"
		if echo {
			msg += " (got " + r.Header.Get("Authorization") + " " + pass + ")"
		}
		railsError(w, http.StatusUnauthorized, msg)
		return
	}
	p := r.URL.Path
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case p == "/instances.xml" && r.Method == http.MethodPost:
		f.create(w, r, body)
	case p == "/instances.xml" && r.Method == http.MethodGet:
		var b strings.Builder
		b.WriteString(`<instances type="array">` + "\n")
		ids := make([]string, 0, len(f.instances))
		for id := range f.instances {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			b.WriteString(f.instanceXML(f.instances[id]))
		}
		b.WriteString("</instances>\n")
		writeXML(w, http.StatusOK, b.String())
	case strings.HasPrefix(p, "/instances/"):
		rest := strings.TrimPrefix(p, "/instances/")
		id, action, _ := strings.Cut(rest, "/")
		id = strings.TrimSuffix(id, ".xml")
		in, ok := f.instances[id]
		if !ok {
			railsError(w, http.StatusNotFound, "Couldn't find Instance with 'id'="+id)
			return
		}
		switch {
		case action == "" && strings.HasSuffix(rest, ".xml") && r.Method == http.MethodGet:
			f.advance(in)
			writeXML(w, http.StatusOK, f.instanceXML(in))
		case action == "stop" && r.Method == http.MethodPut:
			if in.Status == "stopping" || in.Status == "halted" {
				railsError(w, http.StatusUnprocessableEntity, "Instance cannot be stopped in status "+in.Status)
				return
			}
			in.Status, in.polls = "stopping", f.stopPolls
			if in.polls == 0 {
				in.Status = "halted"
			}
			writeXML(w, http.StatusOK, f.instanceXML(in))
		case action == "costs.xml" && r.Method == http.MethodGet:
			var b strings.Builder
			b.WriteString("<instance-costs>\n  <instance-id>" + esc(in.ID) + "</instance-id>\n  <fees type=\"array\">\n")
			for _, fe := range in.Fees {
				fmt.Fprintf(&b, "    <fee>\n      <name>%s</name>\n      <value type=\"decimal\">%s</value>\n      <currency>%s</currency>\n    </fee>\n", esc(fe.Name), esc(fe.Value), esc(fe.Currency))
			}
			b.WriteString("  </fees>\n</instance-costs>\n")
			writeXML(w, http.StatusOK, b.String())
		default:
			railsError(w, http.StatusNotFound, "No route matches ["+r.Method+"] \""+p+"\"")
		}
	default:
		railsError(w, http.StatusNotFound, "No route matches ["+r.Method+"] \""+p+"\"")
	}
}

// advance moves an instance along its lifecycle on a GET.
func (f *Server) advance(in *Instance) {
	switch in.Status {
	case "starting":
		if in.polls <= 0 {
			f.run(in)
		}
		in.polls--
	case "stopping":
		if in.polls <= 0 {
			in.Status = "halted"
		}
		in.polls--
	}
}

func (f *Server) run(in *Instance) {
	in.Status = "running"
	f.ips++
	n := f.ips
	in.InternalIP = fmt.Sprintf("127.70.%d.%d", n/250, n%250+2)
	in.ExternalIP = fmt.Sprintf("127.71.%d.%d", n/250, n%250+2)
}

// createBody is any <instance> of text elements.
type createBody struct {
	XMLName xml.Name
	Fields  []struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	} `xml:",any"`
}

func (f *Server) create(w http.ResponseWriter, r *http.Request, body []byte) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		railsError(w, http.StatusUnsupportedMediaType, "Content-Type "+ct+" is not application/xml")
		return
	}
	var req createBody
	if err := xml.Unmarshal(body, &req); err != nil || req.XMLName.Local != "instance" {
		railsError(w, http.StatusBadRequest, fmt.Sprintf("Malformed instance XML: %v", err))
		return
	}
	fields := map[string]string{}
	for _, e := range req.Fields {
		// Rails reads dashes and underscores alike.
		fields[strings.ReplaceAll(e.XMLName.Local, "-", "_")] = e.Value
	}
	var missing []string
	for _, k := range []string{"deployment_id", "instance_type_id"} {
		if strings.TrimSpace(fields[k]) == "" {
			missing = append(missing, strings.ToUpper(k[:1])+strings.ReplaceAll(k[1:], "_", " ")+" can't be blank")
		}
	}
	if len(missing) > 0 {
		railsError(w, http.StatusUnprocessableEntity, missing...)
		return
	}
	f.seq++
	in := &Instance{
		ID: fmt.Sprintf("9b2c%04d-5a1e-4d3c-8f00-%012d", f.seq, f.seq), Name: fields["name"], Status: "starting",
		Fields: fields, polls: f.startPolls, Created: time.Now(),
		Fees: []Fee{{"Instance", "0.10", "EUR"}, {"Storage", "0.02", "EUR"}, {"Total", "0.12", "EUR"}},
	}
	if fields["cloud_init_b64"] == "true" {
		b, _ := base64.StdEncoding.DecodeString(fields["cloud_init"])
		in.UserData = string(b)
	}
	if in.polls == 0 {
		f.run(in)
	}
	f.created++
	f.instances[in.ID] = in
	writeXML(w, http.StatusCreated, f.instanceXML(in))
}

// instanceXML renders an instance as Rails' to_xml does.
func (f *Server) instanceXML(in *Instance) string {
	el := func(name, v string) string {
		if v == "" {
			return "  <" + name + ` nil="true"/>` + "\n"
		}
		return "  <" + name + ">" + esc(v) + "</" + name + ">\n"
	}
	host := func(ip, kind string) string {
		if ip == "" {
			return ""
		}
		return kind + "-" + strings.ReplaceAll(ip, ".", "-") + ".cloudbroker.example"
	}
	var b strings.Builder
	b.WriteString("<instance>\n")
	b.WriteString(el("id", in.ID))
	b.WriteString(el("name", in.Name))
	b.WriteString(el("status", in.Status))
	b.WriteString(el("deployment-id", in.Fields["deployment_id"]))
	b.WriteString(el("instance-type-id", in.Fields["instance_type_id"]))
	b.WriteString(el("key-pair-id", in.Fields["key_pair_id"]))
	b.WriteString(el("opened-port", in.Fields["opened_port"]))
	b.WriteString(el("isolated", in.Fields["isolated"]))
	b.WriteString(el("disable-autostop", in.Fields["disable_autostop"]))
	b.WriteString(el("external-hostname", host(in.ExternalIP, "ext")))
	b.WriteString(el("external-ip-address", in.ExternalIP))
	b.WriteString(el("internal-hostname", host(in.InternalIP, "int")))
	b.WriteString(el("internal-ip-address", in.InternalIP))
	b.WriteString(`  <created-at type="datetime">` + in.Created.UTC().Format(time.RFC3339) + "</created-at>\n")
	b.WriteString("</instance>\n")
	return b.String()
}
