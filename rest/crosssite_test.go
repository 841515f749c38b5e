package rest_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCrossSite: without a token, a web page on another site (or a name
// rebound to 127.0.0.1) cannot drive the service; with a token the token
// decides.
func TestCrossSite(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	_, hsTok := f.server(t, func(c *serverConfig) { c.Token = "tok-123456" })
	own := strings.TrimPrefix(hs.URL, "http://")
	body := "infra_name: x\nnodes:\n  - {name: a, type: nosuch}\n" // refused later with 400 when it gets through
	cases := []struct {
		name         string
		base, method string
		body         string
		hdr          []string
		want         int
		msg          string
	}{
		{"plain GET", hs.URL, "GET", "", nil, 200, ""},
		{"foreign Host", hs.URL, "GET", "", []string{"Host", "evil.example"}, 403, `Host "evil.example" does not name this service`},
		{"rebound name with port", hs.URL, "POST", body, []string{"Host", "attacker.example:" + strings.Split(own, ":")[1]}, 403, "does not name this service"},
		{"localhost is this service", hs.URL, "GET", "", []string{"Host", "localhost:5000"}, 200, ""},
		{"foreign Origin", hs.URL, "POST", body, []string{"Origin", "https://evil.example", "Content-Type", "application/yaml"}, 403, `web page at "https://evil.example"`},
		{"Origin null", hs.URL, "POST", body, []string{"Origin", "null"}, 403, "refused"},
		{"own Origin", hs.URL, "POST", body, []string{"Origin", hs.URL, "Content-Type", "application/yaml"}, 400, "nosuch"},
		{"text/plain body", hs.URL, "POST", body, []string{"Content-Type", "text/plain;charset=UTF-8"}, 415, "Content-Type text/plain is refused without a token"},
		{"form body", hs.URL, "POST", body, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/yaml"},
		{"multipart", hs.URL, "DELETE", "", []string{"Content-Type", "multipart/form-data; boundary=x"}, 415, "multipart/form-data"},
		{"yaml body", hs.URL, "POST", body, []string{"Content-Type", "application/yaml"}, 400, "nosuch"},
		{"no body type", hs.URL, "POST", body, nil, 400, "nosuch"},
		{"token: foreign Host is fine", hsTok.URL, "POST", body, []string{"Host", "occopus.example", "Authorization", "Bearer tok-123456", "Content-Type", "text/plain"}, 400, "nosuch"},
		{"token: still needed", hsTok.URL, "GET", "", []string{"Origin", "https://evil.example"}, 401, "bearer token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, tc.base+"/infrastructures/", tc.body, tc.hdr...)
			v := expect(t, r, tc.want)
			if tc.msg != "" && !strings.Contains(v["message"].(string), tc.msg) {
				t.Errorf("message %q, want it to contain %q", v["message"], tc.msg)
			}
			if r.header.Get("Content-Security-Policy") != "frame-ancestors 'none'" || r.header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("framing headers: %q %q", r.header.Get("Content-Security-Policy"), r.header.Get("X-Frame-Options"))
			}
		})
	}
	// The dashboard page itself may not be framed either.
	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("the dashboard can be framed")
	}
}
