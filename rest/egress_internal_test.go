package rest

import (
	"strings"
	"testing"
)

func TestEgressCheckURL(t *testing.T) {
	open, err := newEgressPolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	only, err := newEgressPolicy([]string{"10.1.0.0/16", "192.0.2.7", "hooks.example.org", ".corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		p    *egressPolicy
		url  string
		want string // "" = allowed
	}{
		{open, "http://127.0.0.1:8080/hook", ""},
		{open, "https://hooks.example.org/x", ""},
		{open, "http://10.0.0.5/", ""},
		{open, "http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata) addresses are refused"},
		{open, "http://[fe80::1]/", "link-local"},
		{open, "http://[::ffff:169.254.169.254]/", "link-local"},
		{open, "http://[fd00:ec2::254]/", "metadata service"},
		{open, "http://100.100.100.200/", "metadata service"},
		{open, "http://metadata.google.internal/computeMetadata/v1/", "metadata services are refused"},
		{open, "http://0.0.0.0:22/", "unspecified"},
		{open, "http://239.1.1.1/", "multicast"},
		{open, "http://user:pw@127.0.0.1/", "credentials in the URL are refused"},
		{open, "ftp://127.0.0.1/", "want an http or https URL"},
		{only, "http://10.1.2.3/", ""},
		{only, "http://192.0.2.7/", ""},
		{only, "http://hooks.example.org/", ""},
		{only, "http://a.corp.example/", ""},
		{only, "http://10.2.0.1/", "not in webhook_allow"},
		{only, "http://127.0.0.1/", "not in webhook_allow"},
		{only, "http://evil.example/", "host evil.example is not in webhook_allow"},
		{only, "http://169.254.169.254/", "link-local"},
	}
	for _, tc := range cases {
		err := tc.p.checkURL(tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", tc.url, err, tc.want)
		case err != nil && strings.Contains(err.Error(), ":pw@"):
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
	if _, err := newEgressPolicy([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad network in webhook_allow is accepted")
	}
}

// TestEgressDialCheck: the address a delivery connects to is checked after
// name resolution, so a name that resolves to a metadata address is refused.
func TestEgressDialCheck(t *testing.T) {
	open, _ := newEgressPolicy(nil)
	only, _ := newEgressPolicy([]string{"10.1.0.0/16", "hooks.example.org"})
	cases := []struct {
		p           *egressPolicy
		addr        string
		namedHostOK bool
		want        string
	}{
		{open, "127.0.0.1:80", false, ""},
		{open, "169.254.169.254:80", false, "link-local"},
		{open, "[fd00:ec2::254]:80", false, "metadata"},
		{only, "10.1.0.9:443", false, ""},
		{only, "10.9.0.9:443", false, "not in webhook_allow"},
		{only, "10.9.0.9:443", true, ""}, // an allowed name may resolve anywhere but the forbidden ones
		{only, "169.254.1.1:443", true, "link-local"},
	}
	for _, tc := range cases {
		err := tc.p.control(func() bool { return tc.namedHostOK })("tcp", tc.addr, nil)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (allowed name %v): err %v, want %q", tc.addr, tc.namedHostOK, err, tc.want)
		}
	}
}
