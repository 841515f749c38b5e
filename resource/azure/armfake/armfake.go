// Package armfake is a fake Azure Resource Manager and Entra ID token
// service for tests of the Azure backends, run with the official SDK
// clients against it. It speaks their wire protocol, not a mock of them:
//
//   - HTTPS on loopback, with a certificate from a CA generated once per
//     process (WriteCAFile for SSL_CERT_FILE, Transport for clients that
//     take one);
//   - Entra ID: the tenant's OpenID configuration and the v2.0 token
//     endpoint for the client-credentials grant (client id and secret
//     checked, the scope must be the configured audience + "/.default");
//     a call to instance discovery is recorded as an error (a client must
//     not ask login.microsoftonline.com about a private authority);
//   - ARM JSON: every request needs a bearer token the fake issued and an
//     api-version; resource groups (GET/PUT), the generic listing of a
//     resource group's resources with $filter=tagName eq … and tagValue
//     eq … (paged with nextLink), virtual networks and subnets, public
//     IPs, network security groups, network interfaces, virtual machines
//     (with the instance view), managed disks and container groups;
//   - long-running operations as ARM runs them: PUT answers 201 (200 for
//     an update) with Azure-AsyncOperation, DELETE 202 with Location (and
//     Azure-AsyncOperation, but for disks), each operation staying
//     InProgress for Options.Polls polls, then Succeeded or Failed with an
//     {"error": {"code", "message"}} (FailNext);
//   - the references ARM checks: a NIC attached to a VM, a public IP or
//     NSG attached to a NIC, a subnet with NICs or container groups in it
//     cannot be deleted; a VM's customData cannot change;
//   - injections: 429/5xx with Retry-After on every n-th ARM request
//     (Throttle), answers lost after the request was carried out
//     (LoseAnswer), refusals (Reject);
//   - recording: every request with its body (Requests), the live
//     resources (Resources), how many of each type were created (Created),
//     protocol violations (Errors).
//
// Addresses are loopback addresses (127.x.y.z), so a ping health check
// passes for real; each TCP port of a running container group answers
// HTTP on its address (a small page), as the nginx tutorial's port check
// wants.
//
// Limits (what it does not model): one subscription and tenant; no RBAC,
// quotas (use FailNext), regions or zones; addresses are not taken from
// the subnets' ranges; the error codes for container group names and DNS
// labels are the fake's own.
package armfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultTenant       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	DefaultClientID     = "0a6c4c5e-1f3a-4d2b-9c1e-5b7f3e2d1a00"
	DefaultClientSecret = "fake~client.secret_0123456789abcdef"
	DefaultSubscription = "00000000-1111-2222-3333-444444444444"
)

// maxBody bounds request bodies the fake reads.
const maxBody = 4 << 20

// Options configure a Fake.
type Options struct {
	Tenant, ClientID, ClientSecret, Subscription string
	// Audience is the token audience clients must ask for; "" is the
	// fake's own URL (what a client configured with it as endpoint and
	// no known audience asks for).
	Audience string
	// Polls is how many polls a long-running operation answers
	// InProgress before it ends (default 1; a look at the resource counts
	// as a poll). Negative: operations end at once, a PUT answering
	// Succeeded and a DELETE 204, as ARM does for quick ones.
	Polls int
	// PollRetryAfter, when set, is sent with every answer about an
	// operation still in progress: as Retry-After (whole seconds, rounded
	// up) and as retry-after-ms, the two forms the Azure SDK reads.
	PollRetryAfter time.Duration
	// PageSize of resource listings (default 100).
	PageSize int
	// KeepDisks ignores a VM's osDisk.deleteOption Delete: its disk stays
	// when the VM goes (as with deleteOption Detach).
	KeepDisks bool
	// SubnetHold: after a container group is deleted, deletes of its
	// subnet answer InUseSubnetCannotBeDeleted this many times (ARM keeps
	// the service association link for a while).
	SubnetHold int
	// TokenLifetime of issued tokens (default 1 h).
	TokenLifetime time.Duration
}

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	Status int
	Lost   bool      // carried out, answer dropped
	Time   time.Time // when it arrived
}

// Resource is a live resource, as GET shows it.
type Resource struct {
	ID, Type, Name, ResourceGroup string
	Location                      string
	Tags                          map[string]string
	State                         string         // provisioningState
	Properties                    map[string]any // as GET returns them
}

// Fake is a running fake. Its methods are safe for concurrent use.
type Fake struct {
	srv *httptest.Server
	o   Options

	mu        sync.Mutex
	tokens    map[string]token
	scopes    []string
	groups    map[string]*group
	res       map[string]*res // by lowercase id
	ops       map[string]*op
	created   map[string]int // by lowercase type
	requests  []Request
	errs      []string
	nextIP    uint32
	throttle  throttle
	armCount  int
	lose      []rule
	reject    []rule
	failNext  []rule
	holds     map[string]int // subnet id → refusals left
	listeners map[string][]net.Listener
}

type token struct {
	scope   string
	expires time.Time
}

type group struct {
	name, location string
	tags           map[string]string
}

type throttle struct {
	every, status, retryAfter int
}

// rule is an injection: requests with this method (any when "") to a
// resource of this type (any when "").
type rule struct {
	method, typ string
	n           int
	status      int
	code, msg   string
}

func (r *rule) matches(method, typ string) bool {
	return r.n > 0 && (r.method == "" || strings.EqualFold(r.method, method)) &&
		(r.typ == "" || strings.EqualFold(r.typ, typ) || strings.HasSuffix(strings.ToLower(typ), "/"+strings.ToLower(r.typ)))
}

// New starts a fake on 127.0.0.1.
func New(o Options) *Fake {
	if o.Tenant == "" {
		o.Tenant = DefaultTenant
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.Subscription == "" {
		o.Subscription = DefaultSubscription
	}
	if o.Polls == 0 {
		o.Polls = 1
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = time.Hour
	}
	f := &Fake{o: o, tokens: map[string]token{}, groups: map[string]*group{}, res: map[string]*res{}, ops: map[string]*op{},
		created: map[string]int{}, holds: map[string]int{}, listeners: map[string][]net.Listener{}}
	// Loopback addresses from a random /16 of 127/8, so that fakes of
	// parallel tests rarely meet on an address:port.
	var b [2]byte
	_, _ = rand.Read(b[:])
	f.nextIP = 127<<24 | uint32(16+b[0]%224)<<16 | uint32(b[1])<<8
	ca := processCA()
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS12}
	f.srv.StartTLS()
	if f.o.Audience == "" {
		f.o.Audience = f.srv.URL
	}
	return f
}

// Close stops the server and every listener of container groups.
func (f *Fake) Close() {
	f.srv.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, ls := range f.listeners {
		for _, l := range ls {
			l.Close()
		}
		delete(f.listeners, id)
	}
}

// URL is the base URL of both ARM and Entra ID (https://127.0.0.1:port).
func (f *Fake) URL() string { return f.srv.URL }

// Tenant, ClientID, ClientSecret and Subscription are the credentials
// the fake accepts.
func (f *Fake) Tenant() string       { return f.o.Tenant }
func (f *Fake) ClientID() string     { return f.o.ClientID }
func (f *Fake) ClientSecret() string { return f.o.ClientSecret }
func (f *Fake) Subscription() string { return f.o.Subscription }

// Transport is an HTTP transport that trusts the fake's CA.
func (f *Fake) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: processCA().pool, MinVersion: tls.VersionTLS12}
	return t
}

// Scopes are the scopes tokens were asked for, in order.
func (f *Fake) Scopes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.scopes...)
}

// Requests returns what the fake received, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// Errors are the protocol violations the fake saw (a missing api-version,
// a request without a valid token, a call to instance discovery).
func (f *Fake) Errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

// Created counts the resources of a type ("Microsoft.Compute/virtualMachines",
// or its last segment) ever created (not updated).
func (f *Fake) Created(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for t, c := range f.created {
		if strings.EqualFold(t, typ) || strings.HasSuffix(t, "/"+strings.ToLower(typ)) {
			n += c
		}
	}
	return n
}

// Resources lists the live resources (subnets included), sorted by id.
func (f *Fake) Resources() []Resource {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Resource, 0, len(f.res))
	for _, r := range f.res {
		out = append(out, r.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns one live resource by id (any casing).
func (f *Fake) Get(id string) (Resource, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.res[strings.ToLower(id)]
	if !ok {
		return Resource{}, false
	}
	return r.view(), true
}

// ResourceGroups lists the resource groups by name.
func (f *Fake) ResourceGroups() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, g := range f.groups {
		out = append(out, g.name)
	}
	sort.Strings(out)
	return out
}

// Throttle answers every n-th ARM request (polls included, token
// requests not) with status (429, or a 5xx) and Retry-After seconds,
// without carrying it out. n 0 stops it.
func (f *Fake) Throttle(n, status, retryAfter int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle = throttle{every: n, status: status, retryAfter: retryAfter}
	f.armCount = 0
}

// LoseAnswer carries out the next n requests with method to resources of
// type typ ("virtualMachines" or the full type; "" any), then drops the
// connection instead of answering.
func (f *Fake) LoseAnswer(method, typ string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = append(f.lose, rule{method: method, typ: typ, n: n})
}

// Reject answers the next n requests with method to resources of type typ
// with status and ARM error code and message, without carrying them out.
func (f *Fake) Reject(method, typ string, n, status int, code, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject = append(f.reject, rule{method: method, typ: typ, n: n, status: status, code: code, msg: msg})
}

// FailNext makes the next n creations of resources of type typ accepted
// but their operation end Failed with code and message (QuotaExceeded,
// say); the resource stays, provisioningState Failed, as ARM leaves it.
func (f *Fake) FailNext(typ string, n int, code, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = append(f.failNext, rule{method: http.MethodPut, typ: typ, n: n, code: code, msg: msg})
}

// ClearInjections stops every throttling, lost answer, refusal and
// failure still pending.
func (f *Fake) ClearInjections() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle, f.lose, f.reject, f.failNext = throttle{}, nil, nil, nil
}

func take(rules []rule, method, typ string) (rule, bool) {
	for i := range rules {
		if rules[i].matches(method, typ) {
			rules[i].n--
			return rules[i], true
		}
	}
	return rule{}, false
}

func (f *Fake) violation(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// ---- serving ----

// serve records the request, applies the injections and dispatches.
func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "request body unreadable or over 4 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	rec := httptest.NewRecorder()
	lost := f.dispatch(rec, r, body)
	f.mu.Lock()
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(),
		Body: body, Status: rec.Code, Lost: lost, Time: at})
	f.mu.Unlock()
	if lost {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// segRe: what ARM takes in a path segment (resource group names allow
// letters, digits, _ . ( ) and -).
var segRe = regexp.MustCompile(`^[A-Za-z0-9_.()~-]+$`)

func (f *Fake) dispatch(w http.ResponseWriter, r *http.Request, body []byte) (lost bool) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	low := make([]string, len(segs))
	for i, s := range segs {
		low[i] = strings.ToLower(s)
	}
	switch {
	case len(low) == 4 && low[1] == "v2.0" && low[2] == ".well-known" && low[3] == "openid-configuration":
		f.openID(w, segs[0])
		return false
	case len(low) == 4 && low[1] == "oauth2" && low[2] == "v2.0" && low[3] == "token":
		f.token(w, r, segs[0], body)
		return false
	case len(low) >= 2 && low[0] == "common" && low[1] == "discovery":
		f.mu.Lock()
		f.violation("instance discovery was called (%s): it must be off for an authority that is not Microsoft's", r.URL.Path)
		f.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_instance", "error_description": "AADSTS50049: Unknown or invalid instance."})
		return false
	case len(low) < 2 || low[0] != "subscriptions":
		armError(w, http.StatusNotFound, "InvalidRequestUri", "The request URI "+r.URL.Path+" is not one of Azure Resource Manager's.")
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.authorized(w, r) {
		return false
	}
	if v := r.URL.Query().Get("api-version"); v == "" {
		f.violation("%s %s without api-version", r.Method, r.URL.Path)
		armError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return false
	} else if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`).MatchString(v) {
		armError(w, http.StatusBadRequest, "InvalidApiVersionParameter", "The api-version '"+v+"' is invalid.")
		return false
	}
	if !strings.EqualFold(segs[1], f.o.Subscription) {
		armError(w, http.StatusNotFound, "SubscriptionNotFound", "The subscription '"+segs[1]+"' could not be found.")
		return false
	}
	for _, s := range segs {
		if !segRe.MatchString(s) {
			armError(w, http.StatusBadRequest, "InvalidResourceName", fmt.Sprintf("The resource name segment %q is invalid.", s))
			return false
		}
	}
	typ := typeOf(low)
	if t := f.throttle; t.every > 0 {
		f.armCount++
		if f.armCount%t.every == 0 {
			w.Header().Set("Retry-After", strconv.Itoa(t.retryAfter))
			code := "TooManyRequests"
			msg := "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:01:00."
			if t.status != http.StatusTooManyRequests {
				code, msg = "ServerBusy", "The server is currently unable to handle the request."
			}
			armError(w, t.status, code, msg)
			return false
		}
	}
	if rj, ok := take(f.reject, r.Method, typ); ok {
		armError(w, rj.status, rj.code, rj.msg)
		return false
	}
	_, lost = take(f.lose, r.Method, typ)
	f.route(w, r, segs, low, body)
	return lost
}

// typeOf is the resource type a path addresses ("" for others).
func typeOf(low []string) string {
	for i := 0; i+2 < len(low); i++ {
		if low[i] == "providers" && i >= 2 {
			parts := []string{low[i+1], low[i+2]}
			for j := i + 4; j < len(low); j += 2 {
				parts = append(parts, low[j])
			}
			if strings.HasPrefix(low[len(low)-1], "instanceview") {
				parts = parts[:len(parts)-1]
			}
			return strings.Join(parts, "/")
		}
	}
	return ""
}

func (f *Fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	t, known := f.tokens[tok]
	switch {
	case !ok || tok == "":
		f.violation("%s %s without a bearer token", r.Method, r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+f.srv.URL+"/"+f.o.Tenant+`", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return false
	case !known:
		f.violation("%s %s with a token the fake did not issue", r.Method, r.URL.Path)
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return false
	case time.Now().After(t.expires):
		armError(w, http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
		return false
	}
	return true
}

// ---- Entra ID ----

func (f *Fake) openID(w http.ResponseWriter, tenant string) {
	if !strings.EqualFold(tenant, f.o.Tenant) && tenant != "organizations" && tenant != "common" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_tenant",
			"error_description": fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", tenant)})
		return
	}
	base := f.srv.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                f.srv.URL + "/" + f.o.Tenant + "/v2.0",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "EU",
	})
}

func (f *Fake) token(w http.ResponseWriter, r *http.Request, tenant string, body []byte) {
	form, err := url.ParseQuery(string(body))
	entra := func(status int, code, desc string) {
		writeJSON(w, status, map[string]any{"error": code, "error_description": desc, "timestamp": time.Now().UTC().Format(time.DateTime)})
	}
	switch {
	case r.Method != http.MethodPost || err != nil:
		entra(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must be a form POST.")
	case !strings.EqualFold(tenant, f.o.Tenant):
		entra(http.StatusBadRequest, "invalid_request", fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", tenant))
	case form.Get("grant_type") != "client_credentials":
		entra(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type '"+form.Get("grant_type")+"'.")
	case form.Get("client_id") != f.o.ClientID:
		entra(http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory.", form.Get("client_id")))
	case form.Get("client_secret") != f.o.ClientSecret:
		entra(http.StatusUnauthorized, "invalid_client", fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", f.o.ClientID))
	default:
		// MSAL adds the OpenID scopes (openid, profile, offline_access)
		// to the resource's.
		var scope string
		for _, sc := range strings.Fields(form.Get("scope")) {
			if strings.HasSuffix(sc, "/.default") {
				scope = sc
			}
		}
		f.mu.Lock()
		f.scopes = append(f.scopes, scope)
		want := strings.TrimRight(f.o.Audience, "/") + "/.default"
		// The audience may end in a slash (https://management.core.windows.net/
		// gives …net//.default); ARM accepts both.
		if strings.TrimRight(strings.TrimSuffix(scope, "/.default"), "/")+"/.default" != want {
			f.mu.Unlock()
			entra(http.StatusBadRequest, "invalid_scope", fmt.Sprintf("AADSTS500011: The resource principal named %s was not found in the tenant named %s.", strings.TrimSuffix(scope, "/.default"), f.o.Tenant))
			return
		}
		var b [24]byte
		_, _ = rand.Read(b[:])
		tok := hex.EncodeToString(b[:])
		f.tokens[tok] = token{scope: scope, expires: time.Now().Add(f.o.TokenLifetime)}
		f.mu.Unlock()
		secs := int(f.o.TokenLifetime / time.Second)
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
	}
}

// ---- helpers ----

// retryAfter writes the poll delay of an operation still in progress.
func (f *Fake) retryAfter(w http.ResponseWriter, o *op) {
	if d := f.o.PollRetryAfter; d > 0 && o.status == "InProgress" {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		w.Header().Set("retry-after-ms", strconv.Itoa(int(d/time.Millisecond)))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// armError writes ARM's error document; the code is also in
// x-ms-error-code, as ARM sends it.
func armError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-ms-error-code", code)
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// ---- the CA ----

type ca struct {
	leaf tls.Certificate
	pool *x509.CertPool
	pem  []byte
}

var (
	caOnce sync.Once
	theCA  *ca
)

// processCA makes one CA and one loopback certificate per process: the
// system trust store is read once per process, so SSL_CERT_FILE can name
// only one file for all the fakes of a test binary.
func processCA() *ca {
	caOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "armfake test CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		lkey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ltmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		lDER, err := x509.CreateCertificate(rand.Reader, ltmpl, caCert, &lkey.PublicKey, key)
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(caCert)
		theCA = &ca{leaf: tls.Certificate{Certificate: [][]byte{lDER, caDER}, PrivateKey: lkey}, pool: pool,
			pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	})
	return theCA
}

// CAPEM is the PEM of the process CA.
func CAPEM() []byte { return bytes.Clone(processCA().pem) }

// WriteCAFile writes the PEM of the process CA to dir/armfake-ca.pem and
// returns its path, for SSL_CERT_FILE (a test passes its t.TempDir()).
func WriteCAFile(dir string) (string, error) {
	path := filepath.Join(dir, "armfake-ca.pem")
	return path, os.WriteFile(path, processCA().pem, 0o644)
}
