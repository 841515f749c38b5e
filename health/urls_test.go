package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestURLProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/redirect":
			// Points at the broken path: passing proves we didn't follow it.
			http.Redirect(w, r, "/broken", http.StatusFound)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	port := mustURL(t, srv.URL).Port()

	// A server that is gone: connection refused.
	gone := httptest.NewServer(http.NotFoundHandler())
	gonePort := mustURL(t, gone.URL).Port()
	gone.Close()

	data := map[string]any{"variables": map[string]any{"path": "ok"}}
	tests := []struct {
		name    string
		url     string
		want    Status
		wantOut string
	}{
		{"200 with ip template", "http://{{ip}}:" + port + "/ok", Pass, "200"},
		{"200 with spaced template and data", "http://{{ ip }}:" + port + "/{{ variables.path }}", Pass, "/ok: 200"},
		{"302 not followed", "http://{{ip}}:" + port + "/redirect", Pass, "302"},
		{"500", "http://{{ip}}:" + port + "/broken", Fail, "500"},
		{"404", "http://127.0.0.1:" + port + "/nope", Fail, "404"},
		{"connection refused", "http://{{ip}}:" + gonePort + "/", Fail, "refused"},
		{"undefined template var", "http://{{ nope }}:" + port + "/ok", Fail, "undefined"},
		{"bad scheme", "ftp://{{ip}}/", Fail, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &URLProbe{URL: tt.url, Timeout: 2 * time.Second}
			r := p.Check(context.Background(), Target{Addr: "127.0.0.1", Data: data})
			if r.Status != tt.want || !strings.Contains(r.Output, tt.wantOut) {
				t.Fatalf("got %s %q, want %s containing %q", r.Status, r.Output, tt.want, tt.wantOut)
			}
		})
	}
	if _, ok := data["ip"]; ok {
		t.Error("rendering mutated the node's Data")
	}
}

func TestURLTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close (LIFO) so the handler returns
	p := &URLProbe{URL: srv.URL, Timeout: 200 * time.Millisecond}
	start := time.Now()
	r := p.Check(context.Background(), Target{Addr: "127.0.0.1"})
	if r.Status != Fail || time.Since(start) > 2*time.Second {
		t.Fatalf("got %+v after %v", r, time.Since(start))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
