package ec2

// A fake EC2 endpoint speaking the EC2 Query API (form-encoded POST,
// Action=..., Version=2016-11-15; XML answers in the ec2 namespace; errors
// as <Response><Errors><Error>...), so the tests run the real SDK, its
// serializers, signer and deserializers, against it.

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

// faultKind is what the fake does instead of (or after) answering.
type faultKind int

const (
	faultError     faultKind = iota // answer with an error, do nothing
	faultDropAfter                  // perform the action, then drop the connection
	fault500After                   // perform the action, then answer 500 InternalError
	faultHang                       // never answer (until the client gives up)
)

type fault struct {
	action string // "" = any action
	kind   faultKind
	times  int // how many requests it hits
	status int
	code   string
	msg    string
	raw    string // a non-EC2 body (a proxy's HTML page) instead of an error document
}

type fakeInstance struct {
	id, token, reservation string
	state                  string
	image, itype, key      string
	subnet                 string
	groups                 []string
	userData               string // decoded
	tags                   map[string]string
	privIP, pubIP          string
	hiddenFor              int // describes that do not see it yet (eventual consistency)
}

type fakeEC2 struct {
	t      *testing.T
	srv    *httptest.Server
	access string
	region string

	mu        sync.Mutex
	seq       int
	instances map[string]*fakeInstance
	order     []string
	tokens    map[string]string // ClientToken → instance id
	calls     map[string]int    // action → requests received
	runs      []map[string][]string
	faults    []*fault
	// forgetTerminated makes terminated instances vanish (as EC2 does
	// after about an hour) on the describe after they became terminated.
	forgetTerminated bool
	// hideNew makes new instances invisible to that many describes.
	hideNew int
	// pageSize > 0 splits filtered describes into pages.
	pageSize int
	// freeze stops the pending→running and shutting-down→terminated steps.
	freeze bool
	paths  map[string]int // URL paths requests arrived on
	hang   chan struct{}
}

func newFake(t *testing.T) *fakeEC2 {
	f := &fakeEC2{
		t: t, access: "AKIDFAKE", region: "eu-test-1",
		instances: map[string]*fakeInstance{}, tokens: map[string]string{}, calls: map[string]int{},
		paths: map[string]int{}, hang: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", f.serve)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(f.hang)
		f.srv.Close()
	})
	return f
}

func (f *fakeEC2) inject(fs ...*fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

func (f *fakeEC2) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func (f *fakeEC2) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// live counts instances that exist for the engine (not terminating).
func (f *fakeEC2) live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, in := range f.instances {
		if in.state != "terminated" && in.state != "shutting-down" {
			n++
		}
	}
	return n
}

// with runs fn under the fake's lock (settings, inspection).
func (f *fakeEC2) with(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeEC2) instance(id string) fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.instances[id]
	if in == nil {
		return fakeInstance{}
	}
	return *in
}

func (f *fakeEC2) setState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.instances[id]; in != nil {
		in.state = state
	}
}

// kill terminates an instance behind the handler's back.
func (f *fakeEC2) kill(id string) { f.setState(id, "terminated") }

// purge forgets an instance entirely.
func (f *fakeEC2) purge(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.instances, id)
}

var credRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/ec2/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`)

func (f *fakeEC2) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		f.error(w, http.StatusBadRequest, "InvalidAction", "EC2 Query API wants a form-encoded POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		f.error(w, http.StatusBadRequest, "MalformedQueryString", err.Error())
		return
	}
	form := r.PostForm
	action := form.Get("Action")
	f.mu.Lock()
	f.calls[action]++
	f.paths[r.URL.Path]++
	var flt *fault
	for _, x := range f.faults {
		if x.times > 0 && (x.action == "" || x.action == action) {
			x.times--
			flt = x
			break
		}
	}
	access := f.access
	f.mu.Unlock()

	m := credRE.FindStringSubmatch(r.Header.Get("Authorization"))
	switch {
	case m == nil:
		f.error(w, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	case m[1] != access:
		f.error(w, http.StatusUnauthorized, "AuthFailure", "unknown access key "+m[1])
		return
	case m[2] != f.region:
		f.error(w, http.StatusUnauthorized, "AuthFailure", "credential scope region "+m[2]+" is not "+f.region)
		return
	case form.Get("Version") != "2016-11-15":
		f.error(w, http.StatusBadRequest, "InvalidParameterValue", "unsupported Version "+form.Get("Version"))
		return
	}

	if flt != nil {
		switch flt.kind {
		case faultError:
			if flt.raw != "" {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(flt.status)
				fmt.Fprint(w, flt.raw)
				return
			}
			f.error(w, flt.status, flt.code, flt.msg)
			return
		case faultHang:
			select {
			case <-r.Context().Done():
			case <-f.hang:
			}
			return
		}
	}

	var status int
	var body string
	switch action {
	case "RunInstances":
		status, body = f.runInstances(form)
	case "DescribeInstances":
		status, body = f.describeInstances(form)
	case "TerminateInstances":
		status, body = f.terminateInstances(form)
	default:
		status, body = f.errBody(http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
	}
	if flt != nil && status == http.StatusOK {
		switch flt.kind {
		case faultDropAfter:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				f.t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		case fault500After:
			f.error(w, http.StatusInternalServerError, "InternalError", "An internal error has occurred")
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (f *fakeEC2) error(w http.ResponseWriter, status int, code, msg string) {
	status, body := f.errBody(status, code, msg)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (f *fakeEC2) errBody(status int, code, msg string) (int, string) {
	return status, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-%d</RequestID></Response>`, esc(code), esc(msg), status)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// list reads Prefix.1, Prefix.2, ...
func list(form map[string][]string, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func get(form map[string][]string, k string) string {
	if v := form[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (f *fakeEC2) runInstances(form map[string][]string) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, form)
	image := get(form, "ImageId")
	switch {
	case get(form, "MinCount") != "1" || get(form, "MaxCount") != "1":
		return f.errBody(400, "InvalidParameterValue", "this fake makes one instance at a time")
	case image == "":
		return f.errBody(400, "MissingParameter", "The request must contain the parameter ImageId")
	case !strings.HasPrefix(image, "ami-"):
		return f.errBody(400, "InvalidAMIID.Malformed", fmt.Sprintf("Invalid id: %q", image))
	case image == "ami-missing":
		return f.errBody(400, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", image))
	}
	token := get(form, "ClientToken")
	if id, ok := f.tokens[token]; ok && token != "" {
		in := f.instances[id]
		if in == nil {
			return f.errBody(500, "InternalError", "token of a forgotten instance")
		}
		if in.image != image || base64.StdEncoding.EncodeToString([]byte(in.userData)) != get(form, "UserData") {
			return f.errBody(400, "IdempotentParameterMismatch", "The client token you have provided is associated with a resource that is already created, with different parameters.")
		}
		return 200, f.reservationXML("RunInstancesResponse", in)
	}
	var ud string
	if raw := get(form, "UserData"); raw != "" {
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return f.errBody(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data")
		}
		if len(b) > 16384 {
			return f.errBody(400, "InvalidParameterValue", "User data is limited to 16384 bytes")
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
			tags[k[0]] = get(form, p+".Tag."+strconv.Itoa(j)+".Value")
		}
	}
	f.seq++
	in := &fakeInstance{
		id: fmt.Sprintf("i-%017x", f.seq), token: token, reservation: fmt.Sprintf("r-%017x", f.seq),
		state: "pending", image: image, itype: get(form, "InstanceType"), key: get(form, "KeyName"),
		subnet: get(form, "SubnetId"), groups: list(form, "SecurityGroupId"), userData: ud, tags: tags,
		privIP: fmt.Sprintf("10.0.%d.%d", f.seq/250, f.seq%250+2), pubIP: fmt.Sprintf("203.0.113.%d", f.seq%250+2),
		hiddenFor: f.hideNew,
	}
	f.instances[in.id] = in
	f.order = append(f.order, in.id)
	if token != "" {
		f.tokens[token] = in.id
	}
	return 200, f.reservationXML("RunInstancesResponse", in)
}

// advance moves an instance one step on when a describe sees it.
func (f *fakeEC2) advance(in *fakeInstance) {
	if f.freeze {
		return
	}
	switch in.state {
	case "pending":
		in.state = "running"
	case "shutting-down":
		in.state = "terminated"
	case "terminated":
		if f.forgetTerminated {
			delete(f.instances, in.id)
		}
	}
}

var filterNames = map[string]bool{"instance-state-name": true, "instance-id": true, "tag-key": true}

func (f *fakeEC2) describeInstances(form map[string][]string) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
			return f.errBody(400, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", n[0]))
		}
		filters = append(filters, filter{n[0], list(form, p+".Value")})
	}
	var found []*fakeInstance
	if len(ids) > 0 {
		for _, id := range ids {
			in := f.instances[id]
			if in == nil || in.hiddenFor > 0 {
				if in != nil {
					in.hiddenFor--
				}
				return f.errBody(400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id))
			}
			found = append(found, in)
		}
	} else {
		for _, id := range f.order {
			if in := f.instances[id]; in != nil {
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
		f.advance(in)
	}
	var match []*fakeInstance
next:
	for _, in := range found {
		if f.instances[in.id] == nil {
			continue
		}
		for _, fl := range filters {
			var have string
			var ok bool
			switch {
			case fl.name == "instance-state-name":
				have, ok = in.state, true
			case fl.name == "instance-id":
				have, ok = in.id, true
			case fl.name == "tag-key":
				_, ok = in.tags[fl.values[0]]
				have = fl.values[0]
			default:
				have, ok = in.tags[strings.TrimPrefix(fl.name, "tag:")]
			}
			if !ok || !contains(fl.values, have) {
				continue next
			}
		}
		match = append(match, in)
	}
	next := ""
	if f.pageSize > 0 && len(ids) == 0 {
		all := match
		start, _ := strconv.Atoi(get(form, "NextToken"))
		start = min(start, len(all))
		end := min(start+f.pageSize, len(all))
		match = all[start:end]
		if end < len(all) {
			next = strconv.Itoa(end)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="%s"><requestId>req-describe</requestId><reservationSet>`, ec2NS)
	for _, in := range match {
		fmt.Fprintf(&b, `<item><reservationId>%s</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>%s</instancesSet></item>`, in.reservation, instanceXML(in))
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

func (f *fakeEC2) terminateInstances(form map[string][]string) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := list(form, "InstanceId")
	var b strings.Builder
	for _, id := range ids {
		in := f.instances[id]
		if in == nil {
			return f.errBody(400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id))
		}
		prev := in.state
		if in.state != "terminated" {
			in.state = "shutting-down"
		}
		fmt.Fprintf(&b, `<item><instanceId>%s</instanceId><currentState><code>%d</code><name>%s</name></currentState><previousState><code>%d</code><name>%s</name></previousState></item>`,
			id, stateCode[in.state], in.state, stateCode[prev], prev)
	}
	return 200, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<TerminateInstancesResponse xmlns="%s"><requestId>req-terminate</requestId><instancesSet>%s</instancesSet></TerminateInstancesResponse>`, ec2NS, b.String())
}

func (f *fakeEC2) reservationXML(root string, in *fakeInstance) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<%s xmlns="%s"><requestId>req-run</requestId><reservationId>%s</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>%s</instancesSet></%s>`,
		root, ec2NS, in.reservation, instanceXML(in), root)
}

func instanceXML(in *fakeInstance) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<item><instanceId>%s</instanceId><imageId>%s</imageId><instanceState><code>%d</code><name>%s</name></instanceState>`,
		in.id, esc(in.image), stateCode[in.state], in.state)
	fmt.Fprintf(&b, `<instanceType>%s</instanceType><clientToken>%s</clientToken>`, esc(in.itype), esc(in.token))
	if in.key != "" {
		fmt.Fprintf(&b, `<keyName>%s</keyName>`, esc(in.key))
	}
	if in.subnet != "" {
		fmt.Fprintf(&b, `<subnetId>%s</subnetId>`, esc(in.subnet))
	}
	switch in.state {
	case "running", "stopping":
		fmt.Fprintf(&b, `<privateIpAddress>%s</privateIpAddress><ipAddress>%s</ipAddress>`, in.privIP, in.pubIP)
	case "pending", "stopped":
		fmt.Fprintf(&b, `<privateIpAddress>%s</privateIpAddress>`, in.privIP)
	}
	b.WriteString(`<groupSet>`)
	for _, g := range in.groups {
		fmt.Fprintf(&b, `<item><groupId>%s</groupId></item>`, esc(g))
	}
	b.WriteString(`</groupSet><tagSet>`)
	keys := make([]string, 0, len(in.tags))
	for k := range in.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, `<item><key>%s</key><value>%s</value></item>`, esc(k), esc(in.tags[k]))
	}
	b.WriteString(`</tagSet></item>`)
	return b.String()
}
