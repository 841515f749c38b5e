package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRESTService starts `occopus rest-service`, talks to it and stops it
// as SIGINT would (the context ends).
func TestRESTService(t *testing.T) {
	t.Setenv("OCCOPUS_HOME", t.TempDir())
	t.Setenv("OCCOPUS_TOKEN", "env-token-123")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, "occopus", []string{"rest-service", "--port", "0", "--interval", "0.5"}, strings.NewReader(""), io.Discard, &stderr)
	}()
	re := regexp.MustCompile(`occopus REST service on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL announced: %s", stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("exited %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/healthz", ""); c != 200 {
		t.Fatalf("healthz %d", c)
	}
	if c := get("/infrastructures/", ""); c != 401 {
		t.Fatalf("without the token: %d", c)
	}
	if c := get("/infrastructures/", "env-token-123"); c != 200 {
		t.Fatalf("with the token: %d", c)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	if strings.Contains(stderr.String(), "env-token-123") {
		t.Fatal("token in the log")
	}
}

func TestRESTServiceRefusesOpenBind(t *testing.T) {
	t.Setenv("OCCOPUS_TOKEN", "")
	_, stderr, code := run(t, "rest-service", "--host", "0.0.0.0", "--port", "0")
	if code != 1 || !strings.Contains(stderr, "--insecure") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, stderr, code = run(t, "rest-service", "--port", "0", "--tls-cert", "c.pem")
	if code != 1 || !strings.Contains(stderr, "--tls-key") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
