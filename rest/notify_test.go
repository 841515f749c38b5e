package rest_test

import (
	"strings"
	"testing"
)

// TestNotifyRefusesUnsafeWebhooks: notify is no way to reach metadata
// services or to store credentials, and its properties are bounded.
func TestNotifyRefusesUnsafeWebhooks(t *testing.T) {
	f := newFixture(t)
	srv, hs := f.server(t, nil)
	id := submitted(t, srv)
	cases := []struct {
		body string
		code int
		msg  string
	}{
		{`{"webhook": "http://169.254.169.254/latest/meta-data/iam/"}`, 400, "link-local (cloud metadata) addresses are refused"},
		{`{"webhook": "http://metadata.google.internal/"}`, 400, "metadata services are refused"},
		{`{"webhook": "http://admin:s3cret@127.0.0.1:9/"}`, 400, "credentials in the URL are refused"},
		{`{"webhook": "http://127.0.0.1:9/hook"}`, 200, ""},
		{`{"note": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "larger than"},
	}
	for _, tc := range cases {
		v := expect(t, call(t, "POST", hs.URL+"/infrastructures/"+id+"/notify", tc.body, "Content-Type", "application/json"), tc.code)
		msg, _ := v["message"].(string)
		if tc.msg != "" && !strings.Contains(msg, tc.msg) {
			t.Errorf("%.60s: message %q, want %q", tc.body, msg, tc.msg)
		}
		if strings.Contains(msg, "s3cret") {
			t.Errorf("the answer shows the password: %q", msg)
		}
	}
	_, hs2 := f.server(t, func(c *serverConfig) { c.WebhookAllow = []string{"hooks.example.org"} })
	v := expect(t, call(t, "POST", hs2.URL+"/infrastructures/"+id+"/notify", `{"webhook": "http://127.0.0.1:9/"}`, "Content-Type", "application/json"), 400)
	if !strings.Contains(v["message"].(string), "not in webhook_allow") {
		t.Errorf("allow-list: %q", v["message"])
	}
}
