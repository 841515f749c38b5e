// Package ec2fake is a fake EC2 endpoint for tests and benchmarks. It
// speaks the EC2 Query API (form-encoded POST, Action=..., Version=2016-11-15;
// XML answers in the ec2 namespace; errors as <Response><Errors><Error>...),
// so the code under test runs the real AWS SDK, its serializers, signer and
// deserializers, against it.
//
// It knows RunInstances (one instance per call, ClientToken idempotency,
// tags, user data), DescribeInstances (ids, filters on state, id and tags,
// optional paging), TerminateInstances and CreateTags (on instances). An instance is pending when
// made and becomes running on the first describe that sees it (and
// shutting-down then terminated the same way), unless frozen.
//
// Instance addresses are in 127.0.0.0/8 by default (private 127.10.x.y,
// public 127.20.x.y), so a health check that pings them stays on loopback.
//
// What the fake received can be read back: the decoded user data and the
// tags of every instance ([Server.Instances]), the form of every
// RunInstances ([Server.Runs]) and request counters ([Server.Count],
// [Server.Created], [Server.Live]). Faults ([Fault]) and a create latency
// ([Options.RunLatency]) can be injected.
package ec2fake

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultAccessKey = "AKIDFAKE"
	DefaultRegion    = "eu-test-1"
)

const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Options configure a Server. The zero value works.
type Options struct {
	// AccessKey is the only access key accepted (default DefaultAccessKey).
	// Any secret key is accepted: the signature's shape is checked, not
	// its value.
	AccessKey string
	// Region is the only signing region accepted (default DefaultRegion).
	Region string
	// RunLatency delays every RunInstances answer (as a slow cloud does);
	// the instance is made when the delay is over. Concurrent calls wait
	// concurrently.
	RunLatency time.Duration
	// FinishAbandoned carries out a RunInstances whose client went away
	// during RunLatency (killed, timed out), as a cloud does with a request
	// it received, and Close waits for it; by default the fake drops it.
	FinishAbandoned bool
	// Addresses gives the private and public address of the n-th instance
	// (n from 1). Default: 127.10.n/250.n%250+2 and 127.20.n/250.n%250+2.
	Addresses func(n int) (private, public string)
	// Throttle is the fraction (0 to 1) of authenticated requests answered
	// with EC2's throttling error (503 RequestLimitExceeded) instead of
	// being served, drawn from a generator seeded with ThrottleSeed, so a
	// run can be repeated. The counters count them; [Server.Throttled]
	// tells how many there were.
	Throttle     float64
	ThrottleSeed uint64
}

// LoopbackAddresses is the default address plan.
func LoopbackAddresses(n int) (private, public string) {
	return fmt.Sprintf("127.10.%d.%d", n/250, n%250+2), fmt.Sprintf("127.20.%d.%d", n/250, n%250+2)
}

// FaultKind is what the fake does instead of (or after) answering.
type FaultKind int

const (
	FaultError     FaultKind = iota // answer with an error, do nothing
	FaultDropAfter                  // perform the action, then drop the connection
	Fault500After                   // perform the action, then answer 500 InternalError
	FaultHang                       // never answer (until the client gives up or the server closes)
)

// Fault is injected with [Server.Inject]: it hits the next Times requests
// of Action ("" = any action).
type Fault struct {
	Action string
	Kind   FaultKind
	Times  int
	Status int
	Code   string
	Msg    string
	// Raw is a non-EC2 body (a proxy's HTML page) sent instead of an
	// error document.
	Raw string
}

// Instance is what the fake knows of an instance (a copy).
type Instance struct {
	ID, ClientToken, Reservation string
	State                        string
	ImageID, InstanceType        string
	KeyName, SubnetID            string
	SecurityGroups               []string
	UserData                     string // decoded
	Tags                         map[string]string
	PrivateIP, PublicIP          string
	Created                      time.Time

	hiddenFor int // describes that do not see it yet (eventual consistency)
}

// Server is a fake EC2 endpoint on an httptest server. It is safe for
// concurrent use.
type Server struct {
	srv        *httptest.Server
	region     string
	runLatency time.Duration
	finish     bool // Options.FinishAbandoned
	addrs      func(int) (string, string)

	mu        sync.Mutex
	access    string
	seq       int
	instances map[string]*Instance
	order     []string
	tokens    map[string]string // ClientToken → instance id
	calls     map[string]int    // action → requests received
	runs      []url.Values
	faults    []*Fault
	paths     map[string]int // URL paths requests arrived on
	errs      []string       // the fake's own failures

	forgetTerminated bool
	hideNew          int
	pageSize         int
	freeze           bool

	runs0     int // RunInstances requests being served (InFlight)
	throttle  float64
	rng       *rand.Rand // draws the throttled requests; under mu
	throttled int

	// history is every change of an instance between live (exists for a
	// client) and not, in order, for PeakLive.
	history []liveChange

	closeOnce sync.Once
	hang      chan struct{}
}

type liveChange struct {
	id   string
	live bool
}

// New starts a fake EC2 endpoint; Close stops it.
func New(opts Options) *Server {
	s := &Server{
		region: opts.Region, runLatency: opts.RunLatency, finish: opts.FinishAbandoned, addrs: opts.Addresses, access: opts.AccessKey,
		instances: map[string]*Instance{}, tokens: map[string]string{}, calls: map[string]int{},
		paths: map[string]int{}, hang: make(chan struct{}),
		throttle: opts.Throttle, rng: rand.New(rand.NewPCG(opts.ThrottleSeed, 0x0ec2)),
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.access == "" {
		s.access = DefaultAccessKey
	}
	if s.addrs == nil {
		s.addrs = LoopbackAddresses
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint (http://127.0.0.1:port). Any path below it is
// served too (as with http://host:8773/services/Cloud).
func (s *Server) URL() string { return s.srv.URL }

// Region is the signing region the fake accepts.
func (s *Server) Region() string { return s.region }

// AccessKey is the access key the fake accepts.
func (s *Server) AccessKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access
}

// SetAccessKey changes the accepted access key.
func (s *Server) SetAccessKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = k
}

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.hang)
		s.srv.Close()
	})
}

// Inject adds faults; each hits Times matching requests, in order.
func (s *Server) Inject(fs ...*Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fs...)
}

// Count is how many requests of an action arrived.
func (s *Server) Count(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// TotalCalls is how many requests arrived.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// Created is how many instances were made (ClientToken repeats excluded).
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Live counts instances that exist for a client (not shutting down or
// terminated).
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, in := range s.instances {
		if in.State != "terminated" && in.State != "shutting-down" {
			n++
		}
	}
	return n
}

// Instance returns a copy of an instance; ok is false when unknown.
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[id]
	if in == nil {
		return Instance{}, false
	}
	return in.copy(), true
}

// Instances returns copies of every instance the fake remembers, in
// creation order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Instance
	for _, id := range s.order {
		if in := s.instances[id]; in != nil {
			out = append(out, in.copy())
		}
	}
	return out
}

func (in *Instance) copy() Instance {
	c := *in
	c.SecurityGroups = append([]string(nil), in.SecurityGroups...)
	c.Tags = make(map[string]string, len(in.Tags))
	for k, v := range in.Tags {
		c.Tags[k] = v
	}
	return c
}

// Runs returns the forms of every RunInstances request received.
func (s *Server) Runs() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]url.Values, len(s.runs))
	for i, r := range s.runs {
		out[i] = cloneValues(r)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, l := range v {
		c[k] = append([]string(nil), l...)
	}
	return c
}

// Paths returns how many requests arrived on each URL path.
func (s *Server) Paths() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.paths))
	for k, v := range s.paths {
		out[k] = v
	}
	return out
}

// Errors lists failures of the fake itself (a connection it could not
// drop), for the test to report.
func (s *Server) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// SetFreeze stops (true) or resumes the pending→running and
// shutting-down→terminated steps.
func (s *Server) SetFreeze(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freeze = on
}

// SetHideNew makes new instances invisible to that many describes, as
// EC2's eventual consistency does.
func (s *Server) SetHideNew(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hideNew = n
}

// Hide makes an existing instance invisible to the next n describes.
func (s *Server) Hide(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[id]; in != nil {
		in.hiddenFor = n
	}
}

// SetPageSize > 0 splits filtered describes into pages of that size.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// SetForgetTerminated makes terminated instances vanish (as EC2 does
// after about an hour) on the describe after they became terminated.
func (s *Server) SetForgetTerminated(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetTerminated = on
}

// SetState sets an instance's state.
func (s *Server) SetState(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[id]; in != nil {
		s.setState(in, state)
	}
}

// isLive says whether an instance in state exists for a client (as Live
// counts).
func isLive(state string) bool { return state != "terminated" && state != "shutting-down" }

// setState changes an instance's state, keeping the history; under mu.
func (s *Server) setState(in *Instance, state string) {
	if was, is := isLive(in.State), isLive(state); was != is {
		s.history = append(s.history, liveChange{in.ID, is})
	}
	in.State = state
}

// InFlight is how many RunInstances requests are being served now (with
// FinishAbandoned, also those whose client is gone): until it is 0 an
// instance may still appear.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs0
}

// Throttled is how many requests were answered with the injected
// throttling error (Options.Throttle).
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// PeakLive is, for each combination of the values of the tags named, the
// largest number of instances carrying it that were live at the same time
// since the server started (an instance missing a tag has the value "").
// The key is the values joined by "/", in the order of tags. It is exact:
// every change between live and not is recorded as it happens.
func (s *Server) PeakLive(tags ...string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, peak := map[string]int{}, map[string]int{}
	for _, c := range s.history {
		in := s.instances[c.id]
		if in == nil {
			continue // purged: its tags are gone with it
		}
		vals := make([]string, len(tags))
		for i, t := range tags {
			vals[i] = in.Tags[t]
		}
		k := strings.Join(vals, "/")
		if c.live {
			now[k]++
			peak[k] = max(peak[k], now[k])
		} else {
			now[k]--
		}
	}
	return peak
}

// Kill terminates an instance behind the client's back.
func (s *Server) Kill(id string) { s.SetState(id, "terminated") }

// Purge forgets an instance entirely.
func (s *Server) Purge(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.instances, id)
}

var credRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/ec2/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.error(w, http.StatusBadRequest, "InvalidAction", "EC2 Query API wants a form-encoded POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.error(w, http.StatusBadRequest, "MalformedQueryString", err.Error())
		return
	}
	form := r.PostForm
	action := form.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	s.paths[r.URL.Path]++
	var flt *Fault
	for _, x := range s.faults {
		if x.Times > 0 && (x.Action == "" || x.Action == action) {
			x.Times--
			flt = x
			break
		}
	}
	access := s.access
	s.mu.Unlock()

	m := credRE.FindStringSubmatch(r.Header.Get("Authorization"))
	switch {
	case m == nil:
		s.error(w, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	case m[1] != access:
		s.error(w, http.StatusUnauthorized, "AuthFailure", "unknown access key "+m[1])
		return
	case m[2] != s.region:
		s.error(w, http.StatusUnauthorized, "AuthFailure", "credential scope region "+m[2]+" is not "+s.region)
		return
	case form.Get("Version") != "2016-11-15":
		s.error(w, http.StatusBadRequest, "InvalidParameterValue", "unsupported Version "+form.Get("Version"))
		return
	}

	if s.throttleNow() {
		s.error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		return
	}

	if flt != nil {
		switch flt.Kind {
		case FaultError:
			if flt.Raw != "" {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(flt.Status)
				fmt.Fprint(w, flt.Raw)
				return
			}
			s.error(w, flt.Status, flt.Code, flt.Msg)
			return
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-s.hang:
			}
			return
		}
	}

	var status int
	var body string
	switch action {
	case "RunInstances":
		s.mu.Lock()
		s.runs0++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.runs0--
			s.mu.Unlock()
		}()
		if s.runLatency > 0 {
			t := time.NewTimer(s.runLatency)
			gone, closing := r.Context().Done(), (<-chan struct{})(s.hang)
			if s.finish {
				// The cloud goes on without its client; Close waits.
				gone, closing = nil, nil
			}
			select {
			case <-t.C:
			case <-gone:
				t.Stop()
				return
			case <-closing:
				t.Stop()
				return
			}
		}
		status, body = s.runInstances(form)
	case "DescribeInstances":
		status, body = s.describeInstances(form)
	case "TerminateInstances":
		status, body = s.terminateInstances(form)
	case "CreateTags":
		status, body = s.createTags(form)
	default:
		status, body = errBody(http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
	}
	if flt != nil && status == http.StatusOK {
		switch flt.Kind {
		case FaultDropAfter:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, "hijack: "+err.Error())
				s.mu.Unlock()
				return
			}
			conn.Close()
			return
		case Fault500After:
			s.error(w, http.StatusInternalServerError, "InternalError", "An internal error has occurred")
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// throttleNow draws whether this request is throttled (Options.Throttle).
func (s *Server) throttleNow() bool {
	if s.throttle <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng.Float64() >= s.throttle {
		return false
	}
	s.throttled++
	return true
}

func (s *Server) error(w http.ResponseWriter, status int, code, msg string) {
	status, body := errBody(status, code, msg)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func errBody(status int, code, msg string) (int, string) {
	return status, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-%d</RequestID></Response>`, esc(code), esc(msg), status)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// list reads Prefix.1, Prefix.2, ...
func list(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (s *Server) runInstances(form url.Values) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, form)
	image := form.Get("ImageId")
	switch {
	case form.Get("MinCount") != "1" || form.Get("MaxCount") != "1":
		return errBody(400, "InvalidParameterValue", "this fake makes one instance at a time")
	case image == "":
		return errBody(400, "MissingParameter", "The request must contain the parameter ImageId")
	case !strings.HasPrefix(image, "ami-"):
		return errBody(400, "InvalidAMIID.Malformed", fmt.Sprintf("Invalid id: %q", image))
	case image == "ami-missing":
		return errBody(400, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", image))
	}
	token := form.Get("ClientToken")
	if id, ok := s.tokens[token]; ok && token != "" {
		in := s.instances[id]
		if in == nil {
			return errBody(500, "InternalError", "token of a forgotten instance")
		}
		if in.ImageID != image || base64.StdEncoding.EncodeToString([]byte(in.UserData)) != form.Get("UserData") {
			return errBody(400, "IdempotentParameterMismatch", "The client token you have provided is associated with a resource that is already created, with different parameters.")
		}
		return 200, reservationXML("RunInstancesResponse", in)
	}
	var ud string
	if raw := form.Get("UserData"); raw != "" {
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return errBody(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data")
		}
		if len(b) > 16384 {
			return errBody(400, "InvalidParameterValue", "User data is limited to 16384 bytes")
		}
		ud = string(b)
	}
	tags := map[string]string{}
	for i := 1; ; i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		rt, ok := form[p+".ResourceType"]
		if !ok {
			break
		}
		if rt[0] != "instance" {
			continue
		}
		for j := 1; ; j++ {
			k, ok := form[p+".Tag."+strconv.Itoa(j)+".Key"]
			if !ok {
				break
			}
			tags[k[0]] = form.Get(p + ".Tag." + strconv.Itoa(j) + ".Value")
		}
	}
	s.seq++
	priv, pub := s.addrs(s.seq)
	in := &Instance{
		ID: fmt.Sprintf("i-%017x", s.seq), ClientToken: token, Reservation: fmt.Sprintf("r-%017x", s.seq),
		State: "pending", ImageID: image, InstanceType: form.Get("InstanceType"), KeyName: form.Get("KeyName"),
		SubnetID: form.Get("SubnetId"), SecurityGroups: list(form, "SecurityGroupId"), UserData: ud, Tags: tags,
		PrivateIP: priv, PublicIP: pub, Created: time.Now(), hiddenFor: s.hideNew,
	}
	s.instances[in.ID] = in
	s.order = append(s.order, in.ID)
	s.history = append(s.history, liveChange{in.ID, true})
	if token != "" {
		s.tokens[token] = in.ID
	}
	return 200, reservationXML("RunInstancesResponse", in)
}

// advance moves an instance one step on when a describe sees it.
func (s *Server) advance(in *Instance) {
	if s.freeze {
		return
	}
	switch in.State {
	case "pending":
		in.State = "running"
	case "shutting-down":
		in.State = "terminated" // not live either way
	case "terminated":
		if s.forgetTerminated {
			delete(s.instances, in.ID)
		}
	}
}

var filterNames = map[string]bool{"instance-state-name": true, "instance-id": true, "tag-key": true}

func (s *Server) describeInstances(form url.Values) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := list(form, "InstanceId")
	type filter struct {
		name   string
		values []string
	}
	var filters []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		n, ok := form[p+".Name"]
		if !ok {
			break
		}
		if !filterNames[n[0]] && !strings.HasPrefix(n[0], "tag:") {
			return errBody(400, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", n[0]))
		}
		filters = append(filters, filter{n[0], list(form, p+".Value")})
	}
	var found []*Instance
	if len(ids) > 0 {
		for _, id := range ids {
			in := s.instances[id]
			if in == nil || in.hiddenFor > 0 {
				if in != nil {
					in.hiddenFor--
				}
				return errBody(400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id))
			}
			found = append(found, in)
		}
	} else {
		for _, id := range s.order {
			if in := s.instances[id]; in != nil {
				if in.hiddenFor > 0 {
					in.hiddenFor--
					continue
				}
				found = append(found, in)
			}
		}
	}
	// Filters are matched against the state the caller would see.
	for _, in := range found {
		s.advance(in)
	}
	var match []*Instance
next:
	for _, in := range found {
		if s.instances[in.ID] == nil {
			continue
		}
		for _, fl := range filters {
			var have string
			var ok bool
			switch {
			case fl.name == "instance-state-name":
				have, ok = in.State, true
			case fl.name == "instance-id":
				have, ok = in.ID, true
			case fl.name == "tag-key":
				_, ok = in.Tags[fl.values[0]]
				have = fl.values[0]
			default:
				have, ok = in.Tags[strings.TrimPrefix(fl.name, "tag:")]
			}
			if !ok || !contains(fl.values, have) {
				continue next
			}
		}
		match = append(match, in)
	}
	next := ""
	if s.pageSize > 0 && len(ids) == 0 {
		all := match
		start, _ := strconv.Atoi(form.Get("NextToken"))
		start = min(start, len(all))
		end := min(start+s.pageSize, len(all))
		match = all[start:end]
		if end < len(all) {
			next = strconv.Itoa(end)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="%s"><requestId>req-describe</requestId><reservationSet>`, ec2NS)
	for _, in := range match {
		fmt.Fprintf(&b, `<item><reservationId>%s</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>%s</instancesSet></item>`, in.Reservation, instanceXML(in))
	}
	b.WriteString(`</reservationSet>`)
	if next != "" {
		fmt.Fprintf(&b, `<nextToken>%s</nextToken>`, next)
	}
	b.WriteString(`</DescribeInstancesResponse>`)
	return 200, b.String()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

var stateCode = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func (s *Server) terminateInstances(form url.Values) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := list(form, "InstanceId")
	var b strings.Builder
	for _, id := range ids {
		in := s.instances[id]
		if in == nil {
			return errBody(400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id))
		}
		prev := in.State
		if in.State != "terminated" {
			s.setState(in, "shutting-down")
		}
		fmt.Fprintf(&b, `<item><instanceId>%s</instanceId><currentState><code>%d</code><name>%s</name></currentState><previousState><code>%d</code><name>%s</name></previousState></item>`,
			id, stateCode[in.State], in.State, stateCode[prev], prev)
	}
	return 200, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<TerminateInstancesResponse xmlns="%s"><requestId>req-terminate</requestId><instancesSet>%s</instancesSet></TerminateInstancesResponse>`, ec2NS, b.String())
}

// createTags sets (overwrites) tags on instances: ResourceId.N,
// Tag.N.Key, Tag.N.Value. Every id must exist, or nothing is changed.
func (s *Server) createTags(form url.Values) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := list(form, "ResourceId")
	if len(ids) == 0 {
		return errBody(400, "MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return errBody(400, "InvalidID", fmt.Sprintf("The ID '%s' is not valid", id))
		}
		if s.instances[id] == nil {
			return errBody(400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id))
		}
	}
	tags := map[string]string{}
	for j := 1; ; j++ {
		k, ok := form["Tag."+strconv.Itoa(j)+".Key"]
		if !ok {
			break
		}
		if k[0] == "" || len(k[0]) > 128 {
			return errBody(400, "InvalidParameterValue", fmt.Sprintf("Tag key %q must be 1 to 128 characters", k[0]))
		}
		tags[k[0]] = form.Get("Tag." + strconv.Itoa(j) + ".Value")
	}
	if len(tags) == 0 {
		return errBody(400, "MissingParameter", "The request must contain the parameter tagSet")
	}
	for _, id := range ids {
		in := s.instances[id]
		if in.Tags == nil {
			in.Tags = map[string]string{}
		}
		for k, v := range tags {
			in.Tags[k] = v
		}
	}
	return 200, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<CreateTagsResponse xmlns="%s"><requestId>req-tags</requestId><return>true</return></CreateTagsResponse>`, ec2NS)
}

func reservationXML(root string, in *Instance) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<%s xmlns="%s"><requestId>req-run</requestId><reservationId>%s</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>%s</instancesSet></%s>`,
		root, ec2NS, in.Reservation, instanceXML(in), root)
}

func instanceXML(in *Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<item><instanceId>%s</instanceId><imageId>%s</imageId><instanceState><code>%d</code><name>%s</name></instanceState>`,
		in.ID, esc(in.ImageID), stateCode[in.State], in.State)
	fmt.Fprintf(&b, `<instanceType>%s</instanceType><clientToken>%s</clientToken>`, esc(in.InstanceType), esc(in.ClientToken))
	if in.KeyName != "" {
		fmt.Fprintf(&b, `<keyName>%s</keyName>`, esc(in.KeyName))
	}
	if in.SubnetID != "" {
		fmt.Fprintf(&b, `<subnetId>%s</subnetId>`, esc(in.SubnetID))
	}
	switch in.State {
	case "running", "stopping":
		fmt.Fprintf(&b, `<privateIpAddress>%s</privateIpAddress><ipAddress>%s</ipAddress>`, in.PrivateIP, in.PublicIP)
	case "pending", "stopped":
		fmt.Fprintf(&b, `<privateIpAddress>%s</privateIpAddress>`, in.PrivateIP)
	}
	b.WriteString(`<groupSet>`)
	for _, g := range in.SecurityGroups {
		fmt.Fprintf(&b, `<item><groupId>%s</groupId></item>`, esc(g))
	}
	b.WriteString(`</groupSet><tagSet>`)
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, `<item><key>%s</key><value>%s</value></item>`, esc(k), esc(in.Tags[k]))
	}
	b.WriteString(`</tagSet></item>`)
	return b.String()
}

// Launch makes a running instance as another client of the account would
// (another orchestrator, the console), with the tags given and none of
// occopus's: used to test taking over instances occopus did not make.
func (s *Server) Launch(imageID, instanceType string, tags map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	priv, pub := s.addrs(s.seq)
	t := make(map[string]string, len(tags))
	for k, v := range tags {
		t[k] = v
	}
	in := &Instance{
		ID: fmt.Sprintf("i-%017x", s.seq), Reservation: fmt.Sprintf("r-%017x", s.seq), State: "running",
		ImageID: imageID, InstanceType: instanceType, Tags: t, PrivateIP: priv, PublicIP: pub, Created: time.Now(),
	}
	s.instances[in.ID] = in
	s.order = append(s.order, in.ID)
	s.history = append(s.history, liveChange{in.ID, true})
	return in.ID
}
