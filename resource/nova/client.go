package nova

import (
	"cmp"
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

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
)

// credentials are the Keystone v3 credentials of one handler. Never log
// or print them; secrets() lists what the Caller scrubs from errors.
type credentials struct {
	username, password       string // password method
	appCredID, appCredSecret string // application_credential method
	userDomain               string // when the resource section names none
}

func (c credentials) secrets() []string { return []string{c.password, c.appCredSecret} }

// credentialsFrom reads an auth_data entry: username/password, or
// type: application_credential with id and secret.
func credentialsFrom(authData map[string]any, endpoint string) (credentials, error) {
	hint := "auth_data.yaml needs an entry with `type: nova` whose auth_data has username and password, or type: application_credential, id and secret"
	if authData == nil {
		return credentials{}, fmt.Errorf("nova: no credentials for endpoint %s: %s", endpoint, hint)
	}
	var a Credentials
	if err := descr.Decode("auth_data", authData, &a); err != nil {
		return credentials{}, fmt.Errorf("nova: credentials for endpoint %s: %w", endpoint, err)
	}
	switch a.Type {
	case "application_credential", "v3applicationcredential":
		c := credentials{appCredID: cmp.Or(a.ID, a.ApplicationCredentialID),
			appCredSecret: string(cmp.Or(a.Secret, a.ApplicationCredentialSecret)), userDomain: a.UserDomainName}
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
		c := credentials{username: a.Username, password: string(a.Password), userDomain: a.UserDomainName}
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
		return credentials{}, fmt.Errorf("nova: auth_data type %q for endpoint %s is not supported (want password or application_credential)", a.Type, endpoint)
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
	// Every request, the token's included, waits for its host's rate
	// limit. Retries are the Caller's: gophercloud retries only with
	// these functions set; it re-authenticates once on a 401 (an expired
	// token), through the same transport.
	pc.HTTPClient = http.Client{Transport: &cloudapi.Transport{Base: h.transport, Limiter: h.limiter}}
	pc.RetryFunc, pc.RetryBackoffFunc = nil, nil
	pc.UserAgent.Prepend("occopus-go")
	err = h.cloud.Do(ctx, "authenticate", "", func(ctx context.Context) error {
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
		return nil, fmt.Errorf("nova: authenticate at %s: service catalog: %v", h.identity, h.cloud.Scrub(err.Error()))
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
				regions = append(regions, cmp.Or(ep.RegionID, ep.Region))
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

// Error is a failed call: the one error type of the cloud backends.
type Error = cloudapi.Error

// classify reads one failed gophercloud call for the Caller: the HTTP
// status, the request, OpenStack's message, whether to try again.
func classify(err error) cloudapi.Class {
	c := cloudapi.Class{Retryable: retryable(err)}
	var code gophercloud.ErrUnexpectedResponseCode
	var ue *url.Error
	switch {
	case errors.As(err, &code):
		c.Code, c.NotFound = code.Actual, code.Actual == http.StatusNotFound
		c.Endpoint = code.Method + " " + code.URL
		c.Message = providerMessage(code.Body)
	case errors.As(err, &ue):
		c.Endpoint = strings.ToUpper(ue.Op) + " " + ue.URL
		c.Message = ue.Err.Error()
	default:
		c.Message = err.Error()
	}
	return c
}

// retryable: throttling, 5xx gateway/server trouble, and connections cut
// before an answer (reset, EOF). Everything else is the provider's final
// word, and so is the end of the caller's context (an attempt cut by its
// own timeout is retried by the Caller).
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
