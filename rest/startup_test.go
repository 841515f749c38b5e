package rest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/store"
)

// serve runs ListenAndServe until the test ends; it returns the URL, or
// the start-up error.
func serve(t *testing.T, f *fixture, mod func(*serverConfig)) (string, error) {
	t.Helper()
	cfg := serverConfig{Manager: srv1Options(f)}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := newServer(t, cfg)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	urlc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx, func(u string) { urlc <- u }) }()
	select {
	case u := <-urlc:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		return u, nil
	case err := <-done:
		cancel()
		return "", err
	}
}

func TestStartupChecks(t *testing.T) {
	f := newFixture(t)
	t.Run("loopback by default", func(t *testing.T) {
		u, err := serve(t, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("url %s", u)
		}
		expect(t, call(t, "GET", u+"/healthz", ""), 200)
	})
	t.Run("non-loopback without token refused", func(t *testing.T) {
		for _, host := range []string{"0.0.0.0", "::", "192.0.2.1", "example.com"} {
			_, err := serve(t, f, func(c *serverConfig) { c.Host = host })
			if err == nil || !strings.Contains(err.Error(), "--insecure") {
				t.Fatalf("%s: %v", host, err)
			}
		}
	})
	t.Run("non-loopback with token", func(t *testing.T) {
		u, err := serve(t, f, func(c *serverConfig) { c.Host = "0.0.0.0"; c.Token = "tok-12345" })
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		expect(t, call(t, "GET", "http://127.0.0.1:"+port+"/infrastructures/", ""), 401)
		expect(t, call(t, "GET", "http://127.0.0.1:"+port+"/infrastructures/", "", "Authorization", "Bearer tok-12345"), 200)
	})
	t.Run("non-loopback insecure", func(t *testing.T) {
		if _, err := serve(t, f, func(c *serverConfig) { c.Host = "0.0.0.0"; c.Insecure = true }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cert without key", func(t *testing.T) {
		if _, err := serve(t, f, func(c *serverConfig) { c.CertFile = "x.pem" }); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("unreadable cert", func(t *testing.T) {
		_, err := serve(t, f, func(c *serverConfig) { c.CertFile, c.KeyFile = "/nonexistent.pem", "/nonexistent.key" })
		if err == nil || !strings.Contains(err.Error(), "TLS") {
			t.Fatal(err)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		cert, key, pool := selfSigned(t)
		u, err := serve(t, f, func(c *serverConfig) { c.CertFile, c.KeyFile = cert, key })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "https://") {
			t.Fatal(u)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get(u + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// Plain HTTP on the TLS port gets nothing useful.
		r, err := http.Get(strings.Replace(u, "https", "http", 1) + "/infrastructures/")
		if err == nil {
			defer r.Body.Close()
			if r.StatusCode == 200 {
				t.Fatal("plain HTTP served")
			}
		}
	})
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TestSecretsNeverLeak: a credential of auth_data that turns up in an
// error (here: a description quoting it) is scrubbed from responses,
// webhooks and logs.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "Sup3rS3cretP4ssw0rd"
	ad, err := auth.Parse("auth_data.yaml", []byte("resource:\n  - type: nova\n    auth_data:\n      type: password\n      username: someone\n      password: "+secret+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	_, hs := f.server(t, func(c *serverConfig) { c.Secrets = ad.Secrets(); c.Manager.Auth = ad })
	var bodies []string
	r := call(t, "POST", hs.URL+"/infrastructures/", "infra_name: x\n"+secret+": 1\nnodes:\n  - name: "+secret+"\n    type: "+secret+"\n")
	expect(t, r, 400)
	bodies = append(bodies, string(r.body))
	if !strings.Contains(string(r.body), auth.Redacted) {
		t.Fatalf("not redacted: %s", r.body)
	}
	id := create(t, hs.URL, infraYAML)
	for _, p := range []string{"/infrastructures/", "/infrastructures/" + id, "/infrastructures/" + id + "/scaleup/" + secret,
		"/infrastructures/" + secret, "/metrics"} {
		method := "GET"
		if strings.Contains(p, "scaleup") {
			method = "POST"
		}
		bodies = append(bodies, string(call(t, method, hs.URL+p, "").body))
	}
	expect(t, call(t, "DELETE", hs.URL+"/infrastructures/"+id, ""), 200)
	for _, b := range append(bodies, f.logs.String()) {
		if strings.Contains(b, secret) {
			t.Fatalf("secret leaked: %s", b)
		}
	}
}

// brokenStore fails its check (a store that lost its identity).
type brokenStore struct{ store.Store }

func (brokenStore) Check(context.Context) error { return store.ErrNoIdentity }

// TestRefusesABrokenStore: the service does not start maintaining from a
// store that fails its check.
func TestRefusesABrokenStore(t *testing.T) {
	f := newFixture(t)
	_, err := serve(t, f, func(c *serverConfig) { c.Manager.Store = brokenStore{f.st} })
	if err == nil || !strings.Contains(err.Error(), "the store fails its check") || !errors.Is(err, store.ErrNoIdentity) && !strings.Contains(err.Error(), store.ErrNoIdentity.Error()) {
		t.Fatalf("start on a broken store: %v", err)
	}
}
