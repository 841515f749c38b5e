package armfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// client speaks raw HTTP to the fake, as a wire-level check of what the
// SDK-driven tests of the backends rely on.
type client struct {
	t     *testing.T
	f     *Fake
	c     *http.Client
	token string
}

func newClient(t *testing.T, o Options) *client {
	f := New(o)
	t.Cleanup(f.Close)
	return &client{t: t, f: f, c: &http.Client{Transport: f.Transport()}}
}

func (c *client) login() {
	c.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.f.ClientID()}, "client_secret": {c.f.ClientSecret()},
		"scope": {c.f.URL() + "/.default openid profile offline_access"}}
	resp, err := c.c.PostForm(c.f.URL()+"/"+c.f.Tenant()+"/oauth2/v2.0/token", form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
		c.t.Fatalf("token: %d %+v %v", resp.StatusCode, tok, err)
	}
	c.token = tok.AccessToken
}

func (c *client) do(method, path, body string) (*http.Response, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.f.URL()+path, strings.NewReader(body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp, m
}

const api = "?api-version=2024-07-01"

func code(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestProtocol(t *testing.T) {
	c := newClient(t, Options{Polls: 1})
	sub := "/subscriptions/" + c.f.Subscription()
	rg := sub + "/resourceGroups/rg"
	nsg := rg + "/providers/Microsoft.Network/networkSecurityGroups/n1"
	// Without a token: 401.
	if resp, m := c.do("GET", rg+api, ""); resp.StatusCode != 401 || code(m) != "AuthenticationFailed" {
		t.Errorf("no token: %d %v", resp.StatusCode, m)
	}
	c.login()
	steps := []struct {
		method, path, body string
		status             int
		code               string
		header             string // a header the answer must carry
	}{
		{"GET", rg, "", 400, "MissingApiVersionParameter", ""},
		{"GET", rg + api, "", 404, "ResourceGroupNotFound", ""},
		{"PUT", rg + api, `{"location":"westeurope"}`, 201, "", ""},
		{"PUT", rg + api, `{"location":"eastus"}`, 409, "InvalidResourceGroupLocation", ""},
		{"PUT", nsg + api, `{"location":"westeurope","tags":{"a/b":"x"}}`, 400, "InvalidTagNameCharacters", ""},
		{"PUT", nsg + api, `{"location":"westeurope","tags":{"occopus_node_id":"n"}}`, 201, "", "Azure-AsyncOperation"},
		{"PUT", nsg + api, `{"location":"westeurope","tags":{"occopus_node_id":"n"}}`, 200, "", "Azure-AsyncOperation"},
		{"GET", strings.ToLower(nsg) + api, "", 200, "", ""}, // ARM paths are case-insensitive
		{"DELETE", nsg + api, "", 202, "", "Location"},
		{"GET", rg + "/resources" + api + "&$filter=tagName+eq+'x'", "", 400, "InvalidFilterInQueryString", ""},
		{"DELETE", rg + "/providers/Microsoft.Compute/disks/none" + api, "", 204, "", ""},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Web/sites/s" + api, "", 400, "NoRegisteredProviderFound", ""},
		{"GET", "/subscriptions/other/resourceGroups/rg" + api, "", 404, "SubscriptionNotFound", ""},
	}
	for _, s := range steps {
		resp, m := c.do(s.method, s.path, s.body)
		if resp.StatusCode != s.status || code(m) != s.code {
			t.Errorf("%s %s: %d %s, want %d %s", s.method, s.path, resp.StatusCode, code(m), s.status, s.code)
		}
		if s.header != "" && resp.Header.Get(s.header) == "" {
			t.Errorf("%s %s: no %s header", s.method, s.path, s.header)
		}
	}
	if errs := c.f.Errors(); len(errs) != 2 || !strings.Contains(errs[0], "without a bearer token") || !strings.Contains(errs[1], "without api-version") {
		t.Errorf("violations %q", errs)
	}
}

func TestOperations(t *testing.T) {
	c := newClient(t, Options{Polls: 2})
	c.login()
	rg := "/subscriptions/" + c.f.Subscription() + "/resourceGroups/rg"
	c.do("PUT", rg+api, `{"location":"westeurope"}`)
	nsg := rg + "/providers/Microsoft.Network/networkSecurityGroups/n1"
	c.f.FailNext("networkSecurityGroups", 1, "QuotaExceeded", "No more NSGs.")
	resp, m := c.do("PUT", nsg+api, `{"location":"westeurope"}`)
	if resp.StatusCode != 201 || m["properties"].(map[string]any)["provisioningState"] != "Creating" {
		t.Fatalf("PUT: %d %v", resp.StatusCode, m)
	}
	op, _ := url.Parse(resp.Header.Get("Azure-AsyncOperation"))
	var states []string
	for range 4 {
		_, m := c.do("GET", op.RequestURI(), "")
		states = append(states, m["status"].(string))
	}
	if strings.Join(states, " ") != "InProgress InProgress Failed Failed" {
		t.Errorf("operation states %v", states)
	}
	if _, m := c.do("GET", op.RequestURI(), ""); code(m) != "QuotaExceeded" {
		t.Errorf("failed operation %v", m)
	}
	if r, ok := c.f.Get("/subscriptions/" + c.f.Subscription() + "/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n1"); !ok || r.State != "Failed" {
		t.Errorf("the failed resource: %+v %v", r, ok)
	}
	// DELETE: the Location answers 202 until done, then 204.
	resp, _ = c.do("DELETE", nsg+api, "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	var codes []int
	for range 4 {
		r, _ := c.do("GET", loc.RequestURI(), "")
		codes = append(codes, r.StatusCode)
	}
	if len(codes) != 4 || codes[0] != 202 || codes[1] != 202 || codes[2] != 204 || codes[3] != 204 {
		t.Errorf("Location answers %v", codes)
	}
	if n := len(c.f.Resources()); n != 0 {
		t.Errorf("%d resources left", n)
	}
}

func TestInjections(t *testing.T) {
	c := newClient(t, Options{})
	c.login()
	rg := "/subscriptions/" + c.f.Subscription() + "/resourceGroups/rg"
	c.f.Throttle(2, 429, 3)
	var statuses []int
	for range 4 {
		r, _ := c.do("GET", rg+api, "")
		statuses = append(statuses, r.StatusCode)
		if r.StatusCode == 429 && r.Header.Get("Retry-After") != "3" {
			t.Errorf("429 without Retry-After: %v", r.Header)
		}
	}
	if statuses[0] != 404 || statuses[1] != 429 || statuses[2] != 404 || statuses[3] != 429 {
		t.Errorf("statuses %v", statuses)
	}
	c.f.Throttle(0, 0, 0)
	c.do("PUT", rg+api, `{"location":"westeurope"}`)
	c.f.LoseAnswer("PUT", "networkSecurityGroups", 1)
	req, _ := http.NewRequest("PUT", c.f.URL()+rg+"/providers/Microsoft.Network/networkSecurityGroups/n"+api, strings.NewReader(`{"location":"westeurope"}`))
	req.Header.Set("Authorization", "Bearer "+c.token)
	if resp, err := c.c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a lost answer arrived: %d", resp.StatusCode)
	}
	if c.f.Created("networkSecurityGroups") != 1 {
		t.Error("the request whose answer was lost was not carried out")
	}
	reqs := c.f.Requests()
	if last := reqs[len(reqs)-1]; !last.Lost || last.Method != "PUT" {
		t.Errorf("last request %+v, want the lost PUT", last)
	}
}

func TestEntra(t *testing.T) {
	c := newClient(t, Options{})
	cases := []struct {
		name    string
		form    url.Values
		status  int
		errCode string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.f.ClientID()}, "client_secret": {"x"}, "scope": {c.f.URL() + "/.default"}}, 401, "invalid_client"},
		{"unknown app", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {c.f.ClientSecret()}, "scope": {c.f.URL() + "/.default"}}, 400, "unauthorized_client"},
		{"another audience", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.f.ClientID()}, "client_secret": {c.f.ClientSecret()}, "scope": {"https://management.core.windows.net//.default"}}, 400, "invalid_scope"},
		{"password grant", url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		resp, err := c.c.PostForm(c.f.URL()+"/"+c.f.Tenant()+"/oauth2/v2.0/token", tc.form)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != tc.status || m["error"] != tc.errCode {
			t.Errorf("%s: %d %v", tc.name, resp.StatusCode, m)
		}
	}
	resp, m := c.do("GET", "/"+c.f.Tenant()+"/v2.0/.well-known/openid-configuration", "")
	if resp.StatusCode != 200 || m["token_endpoint"] != c.f.URL()+"/"+c.f.Tenant()+"/oauth2/v2.0/token" || m["issuer"] == nil {
		t.Errorf("openid configuration %d %v", resp.StatusCode, m)
	}
	c.do("GET", "/common/discovery/instance?api-version=1.1", "")
	if errs := c.f.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "instance discovery") {
		t.Errorf("violations %v", errs)
	}
}
