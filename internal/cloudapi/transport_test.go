package cloudapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingWaiter records the endpoints it was asked about and answers
// with err.
type countingWaiter struct {
	mu   sync.Mutex
	keys []string
	err  error
}

func (w *countingWaiter) Wait(ctx context.Context, endpoint string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keys = append(w.keys, endpoint)
	return w.err
}

// closeRecorder is a request body that says whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestTransport(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	refused := errors.New("no budget")
	cases := []struct {
		name      string
		waiter    Waiter
		cancelled bool // the request's context has ended
		wantKeys  int
		wantHits  int32
		wantErr   func(err error) bool
	}{
		{name: "nil limiter: no wait", waiter: nil, wantHits: 3},
		{name: "waits per request, keyed by scheme://host", waiter: &countingWaiter{}, wantKeys: 3, wantHits: 3},
		{name: "a wait the deadline cannot afford is retryable", waiter: &countingWaiter{err: refused}, wantKeys: 1,
			wantErr: func(err error) bool { return IsRetryable(err) && errors.Is(err, refused) }},
		{name: "a wait ended by the caller is not", waiter: &countingWaiter{err: context.Canceled}, cancelled: true, wantKeys: 1,
			wantErr: func(err error) bool { return !IsRetryable(err) && errors.Is(err, context.Canceled) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			cli := &http.Client{Transport: &Transport{Limiter: tc.waiter}}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			for _, path := range []string{"/v3/auth/tokens", "/servers?page=1", "/servers?page=2"} {
				body := &closeRecorder{Reader: strings.NewReader("{}")}
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+path, body)
				resp, err := cli.Do(req)
				if tc.wantErr != nil {
					if err == nil || !tc.wantErr(err) {
						t.Fatalf("err = %v", err)
					}
					if !body.closed.Load() {
						t.Error("the request body of a refused request was not closed")
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			if w, ok := tc.waiter.(*countingWaiter); ok {
				if len(w.keys) != tc.wantKeys {
					t.Errorf("%d waits, want %d", len(w.keys), tc.wantKeys)
				}
				for _, k := range w.keys {
					if k != srv.URL {
						t.Errorf("waited for %q, want %q", k, srv.URL)
					}
				}
			}
			if n := hits.Load(); n != tc.wantHits {
				t.Errorf("%d requests reached the server, want %d", n, tc.wantHits)
			}
		})
	}
}

// Two clients on one Limiters share the budget of a host; another host
// has its own.
func TestTransportSharesTheBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	lim := NewLimiters(20, 1) // no burst: 6 requests take at least 250 ms
	a := &http.Client{Transport: &Transport{Limiter: lim}}
	b := &http.Client{Transport: &Transport{Limiter: lim}}
	get := func(c *http.Client, url string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(a, other.URL) // takes other's burst, not srv's
	start := time.Now()
	for i := range 6 {
		get([]*http.Client{a, b}[i%2], srv.URL+"/p")
	}
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Errorf("6 requests at 20/s from two clients took %v", d)
	}
}

func TestEndpointOf(t *testing.T) {
	req := httptest.NewRequest("GET", "https://nova.example:8774/v2.1/servers?x=1", nil)
	if got := EndpointOf(req.URL); got != "https://nova.example:8774" {
		t.Errorf("EndpointOf = %q", got)
	}
}
