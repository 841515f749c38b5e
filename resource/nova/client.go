package nova

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/occopus-go/occopus/internal/cloudapi"
)

// credentials are the Keystone v3 credentials of one handler. Never log
// or print them; secrets() lists what scrub removes from error text.
type credentials struct {
	username, password       string // password method
	appCredID, appCredSecret string // application_credential method
}

func (c credentials) secrets() []string {
	var out []string
	for _, s := range []string{c.password, c.appCredSecret} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// credentialsFrom reads an auth_data entry: username/password, or
// type: application_credential with id and secret.
func credentialsFrom(auth map[string]any, endpoint string) (credentials, error) {
	hint := "auth_data.yaml needs an entry with `type: nova` whose auth_data has username and password, or type: application_credential, id and secret"
	if auth == nil {
		return credentials{}, fmt.Errorf("nova: no credentials for endpoint %s: %s", endpoint, hint)
	}
	switch typ := str(auth, "type"); typ {
	case "application_credential", "v3applicationcredential":
		c := credentials{appCredID: str(auth, "id"), appCredSecret: str(auth, "secret")}
		if c.appCredID == "" {
			c.appCredID = str(auth, "application_credential_id")
		}
		if c.appCredSecret == "" {
			c.appCredSecret = str(auth, "application_credential_secret")
		}
		var missing []string
		if c.appCredID == "" {
			missing = append(missing, "id")
		}
		if c.appCredSecret == "" {
			missing = append(missing, "secret")
		}
		if len(missing) > 0 {
			return credentials{}, fmt.Errorf("nova: application credential for endpoint %s lacks %s in auth_data", endpoint, strings.Join(missing, " and "))
		}
		return c, nil
	case "", "password", "v3password":
		c := credentials{username: str(auth, "username"), password: str(auth, "password")}
		var missing []string
		if c.username == "" {
			missing = append(missing, "username")
		}
		if c.password == "" {
			missing = append(missing, "password")
		}
		if len(missing) > 0 {
			return credentials{}, fmt.Errorf("nova: credentials for endpoint %s lack %s in auth_data (%s)", endpoint, strings.Join(missing, " and "), hint)
		}
		return c, nil
	default:
		return credentials{}, fmt.Errorf("nova: auth_data type %q for endpoint %s is not supported (want password or application_credential)", typ, endpoint)
	}
}

// identityEndpoint checks the `endpoint` key (the Keystone URL, with or
// without a version path) and returns the Keystone v3 base URL ending in
// "/v3/".
func identityEndpoint(ep string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ep))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("nova: endpoint %q is not an http(s) URL of the Keystone identity service (e.g. https://keystone.example.org:5000/v3)", ep)
	}
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/v3"):
	case strings.HasSuffix(p, "/v2.0"):
		p = strings.TrimSuffix(p, "/v2.0") + "/v3" // Keystone v2 is gone; same service, v3 API
	default:
		p += "/v3"
	}
	u.Path = p + "/"
	return u.String(), nil
}

// authOptions builds the Keystone v3 options: application credential, or
// password scoped to project_id (or the deprecated tenant_name as project
// name in the user's or project_domain_name's domain).
func (h *Handler) authOptions() *gophercloud.AuthOptions {
	o := &gophercloud.AuthOptions{IdentityEndpoint: h.identity, AllowReauth: true}
	if h.creds.appCredID != "" {
		o.ApplicationCredentialID = h.creds.appCredID
		o.ApplicationCredentialSecret = h.creds.appCredSecret
		return o
	}
	o.Username = h.creds.username
	o.Password = h.creds.password
	o.DomainName = h.userDomain
	switch {
	case h.projectID != "":
		o.Scope = &gophercloud.AuthScope{ProjectID: h.projectID}
	case h.tenantName != "":
		o.Scope = &gophercloud.AuthScope{ProjectName: h.tenantName, DomainName: h.projectDomain}
	}
	return o
}

// clients are the service clients of an authenticated session.
type clients struct {
	compute *gophercloud.ServiceClient
	network *gophercloud.ServiceClient // nil when the catalog has none
}

// connect authenticates once (lazily, with retries) and picks the compute
// and network endpoints from the catalog.
func (h *Handler) connect(ctx context.Context) (*clients, error) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.conn != nil {
		return h.conn, nil
	}
	pc, err := openstack.NewClient(h.identity)
	if err != nil {
		return nil, fmt.Errorf("nova: endpoint %s: %v", h.identity, err)
	}
	pc.HTTPClient = http.Client{Transport: &limitedTransport{base: h.transport, limiters: h.limiters}}
	pc.UserAgent.Prepend("occopus-go")
	err = h.do(ctx, "authenticate", "", func(ctx context.Context) error {
		return openstack.AuthenticateV3(ctx, pc, h.authOptions(), gophercloud.EndpointOpts{})
	})
	if err != nil {
		return nil, err
	}
	res, ok := pc.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return nil, fmt.Errorf("nova: authenticate at %s: unexpected auth result %T", h.identity, pc.GetAuthResult())
	}
	cat, err := res.ExtractServiceCatalog()
	if err != nil {
		return nil, fmt.Errorf("nova: authenticate at %s: service catalog: %v", h.identity, h.scrub(err.Error()))
	}
	computeURL, err := h.pickEndpoint(cat, "compute")
	if err != nil {
		return nil, err
	}
	c := &clients{compute: &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: computeURL, Type: "compute"}}
	if netURL, err := h.pickEndpoint(cat, "network"); err == nil {
		base := netURL
		if !strings.HasSuffix(strings.TrimSuffix(base, "/"), "/v2.0") {
			base += "v2.0/"
		}
		c.network = &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: netURL, ResourceBase: base, Type: "network"}
	}
	h.conn = c
	return c, nil
}

// pickEndpoint chooses the public endpoint of a service type in the
// configured region (any region when none is configured). It does not
// probe the endpoint for versions: the catalog is trusted.
func (h *Handler) pickEndpoint(cat *tokens.ServiceCatalog, typ string) (string, error) {
	var regions []string
	for _, e := range cat.Entries {
		if e.Type != typ {
			continue
		}
		for _, ep := range e.Endpoints {
			if ep.Interface != "public" {
				continue
			}
			if h.region != "" && ep.Region != h.region && ep.RegionID != h.region {
				regions = append(regions, cmpOr(ep.RegionID, ep.Region))
				continue
			}
			return gophercloud.NormalizeURL(ep.URL), nil
		}
	}
	if h.region != "" {
		return "", fmt.Errorf("nova: the service catalog of %s has no public %s endpoint in region %q (regions: %v)", h.identity, typ, h.region, regions)
	}
	return "", fmt.Errorf("nova: the service catalog of %s has no public %s endpoint", h.identity, typ)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// limitedTransport waits for the per-endpoint (scheme://host) rate limit
// before every HTTP request, including token requests and pagination.
type limitedTransport struct {
	base     http.RoundTripper
	limiters *cloudapi.Limiters
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.limiters.Wait(req.Context(), req.URL.Scheme+"://"+req.URL.Host); err != nil {
		return nil, err
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// Error is a failed OpenStack call: which operation, for which node, at
// which endpoint, with the HTTP status and the provider's message.
type Error struct {
	Op       string // "create server", "get server", ...
	Node     string // node id, "" when not about one node
	Endpoint string // "METHOD URL" or the identity endpoint
	Code     int    // HTTP status; 0 when there was no answer
	Message  string // the provider's message (secrets removed)
	Attempts int    // > 1 when retries were exhausted
	err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("nova: ")
	b.WriteString(e.Op)
	if e.Node != "" {
		b.WriteString(" for node ")
		b.WriteString(e.Node)
	}
	if e.Endpoint != "" {
		b.WriteString(" at ")
		b.WriteString(e.Endpoint)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap gives the cause, for errors.Is(err, context.Canceled) and alike.
func (e *Error) Unwrap() error { return e.err }

// IsNotFound reports whether err is an HTTP 404 from OpenStack.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

// retryable: throttling, 5xx gateway/server trouble, and connections cut
// before an answer (reset, EOF). Everything else is the provider's final
// word, and so is the end of the caller's context.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return cloudapi.RetryableStatus(code.Actual)
	}
	return cloudapi.Transient(err)
}

// apiError turns an SDK error into an *Error, secrets removed.
func (h *Handler) apiError(op, node string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	out := &Error{Op: op, Node: node, err: err}
	var code gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &code):
		out.Code = code.Actual
		out.Endpoint = code.Method + " " + code.URL
		out.Message = providerMessage(code.Body)
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			out.Endpoint = strings.ToUpper(ue.Op) + " " + ue.URL
			out.Message = ue.Err.Error()
		} else {
			out.Message = err.Error()
		}
	}
	if out.Endpoint == "" && op == "authenticate" {
		out.Endpoint = h.identity
	}
	out.Endpoint = h.scrub(out.Endpoint)
	out.Message = h.scrub(out.Message)
	return out
}

// providerMessage extracts the message of an OpenStack error body:
// Nova {"badRequest": {"message": ..., "code": 400}}, Neutron
// {"NeutronError": {"type", "message", "detail"}}, Keystone
// {"error": {"code", "title", "message"}}. Else the trimmed body.
func providerMessage(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		for _, v := range m {
			var inner struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Title   string `json:"title"`
			}
			if json.Unmarshal(v, &inner) == nil && inner.Message != "" {
				if inner.Type != "" {
					return inner.Type + ": " + inner.Message
				}
				return inner.Message
			}
		}
		var flat struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &flat) == nil && flat.Message != "" {
			return flat.Message
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// scrub replaces the handler's secrets in s.
func (h *Handler) scrub(s string) string {
	for _, sec := range h.creds.secrets() {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// do runs one OpenStack call through the retry policy: retryable failures
// are tried again with backoff, others end at once. The error is an
// *Error naming op, node, endpoint, code and message.
func (h *Handler) do(ctx context.Context, op, node string, fn func(ctx context.Context) error) error {
	attempts := 0
	err := h.policy.Do(ctx, func(ctx context.Context) error {
		attempts++
		err := fn(ctx)
		if err == nil {
			return nil
		}
		e := h.apiError(op, node, err)
		if retryable(err) {
			h.log.Debug("retrying", "op", op, "node", node, "code", e.Code, "attempt", attempts)
			return &cloudapi.Retryable{Err: e}
		}
		return e
	})
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if attempts > 1 && retryable(e.err) {
			e.Attempts = attempts
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(e, ctxErr) {
			return fmt.Errorf("%w (%w)", e, ctxErr)
		}
		return e
	}
	return h.apiError(op, node, err) // ctx ended before a call
}

// str reads a string setting (temporary until nova's typed settings).
func str(section map[string]any, key string) string {
	v, ok := section[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(fmt.Sprint(v))
}
