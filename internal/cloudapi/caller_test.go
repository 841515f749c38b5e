package cloudapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCloud answers each request with the next of its scripted answers
// ("503 busy", "hang", "200"); the last one repeats.
type fakeCloud struct {
	*httptest.Server
	mu      sync.Mutex
	answers []string
	n       int
}

func newFakeCloud(t *testing.T, answers ...string) *fakeCloud {
	f := &fakeCloud{answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		a := f.answers[min(f.n, len(f.answers)-1)]
		f.n++
		f.mu.Unlock()
		if a == "hang" {
			<-r.Context().Done()
			return
		}
		code, msg, _ := strings.Cut(a, " ")
		status, _ := strconv.Atoi(code)
		w.WriteHeader(status)
		io.WriteString(w, msg)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeCloud) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// statusError is what the "SDK" below returns for an answer that is not 200.
type statusError struct {
	method, url string
	code        int
	body        string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.url, e.code, e.body)
}

// get is one SDK call: a GET through the cloudapi transport.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &Transport{}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &statusError{method: "GET", url: url, code: resp.StatusCode, body: string(b)}
	}
	return nil
}

// classify is a provider's classifier for statusError: a message "Code:
// text" gives the provider code.
func classify(err error) Class {
	var se *statusError
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		c := Class{Code: se.code, Endpoint: se.method + " " + se.url, Message: se.body,
			Retryable: RetryableStatus(se.code), NotFound: se.code == http.StatusNotFound}
		if code, msg, ok := strings.Cut(se.body, ": "); ok {
			c.ProviderCode, c.Message = code, msg
		}
		return c
	case errors.As(err, &ue):
		return Class{Endpoint: strings.ToUpper(ue.Op) + " " + ue.URL, Message: ue.Err.Error(), Retryable: Transient(err)}
	}
	return Class{Message: err.Error()}
}

func testCaller(waits *int) *Caller {
	return &Caller{Provider: "acme", Endpoint: "https://acme.example", Classify: classify,
		Policy: Policy{Attempts: 4, Base: time.Millisecond, Sleep: func(ctx context.Context, d time.Duration) error {
			*waits++
			return ctx.Err()
		}}}
}

func TestCaller(t *testing.T) {
	cases := []struct {
		name      string
		answers   []string
		node      string
		wrap      bool // the call marks every failure Retryable itself
		wantCalls int
		wantErr   string // "" = success; HOST stands for the fake's URL
		check     func(t *testing.T, e *Error)
	}{
		{name: "success at once", answers: []string{"200"}, wantCalls: 1},
		{name: "throttled twice then ok", answers: []string{"429 SlowDown: slow down", "503", "200"}, wantCalls: 3},
		{name: "permanent error is not retried", answers: []string{"400 InvalidParameterValue: no such size"}, node: "n1", wantCalls: 1,
			wantErr: "acme: create server for node n1 (GET HOST/x): InvalidParameterValue: no such size (HTTP 400)",
			check: func(t *testing.T, e *Error) {
				if e.Code != 400 || e.ProviderCode != "InvalidParameterValue" || e.Message != "no such size" || e.Attempts != 1 || e.Retryable || e.Node != "n1" {
					t.Errorf("%+v", *e)
				}
			}},
		{name: "gives up after the attempts", answers: []string{"503 the cloud is down"}, wantCalls: 4,
			wantErr: "acme: create server (GET HOST/x): the cloud is down (HTTP 503; gave up after 4 attempts)",
			check: func(t *testing.T, e *Error) {
				if !e.Retryable || e.Attempts != 4 {
					t.Errorf("%+v", *e)
				}
			}},
		{name: "an answer without a message", answers: []string{"502"}, wantCalls: 4,
			wantErr: "acme: create server (GET HOST/x): HTTP 502 (gave up after 4 attempts)"},
		{name: "permanent after retries", answers: []string{"503", "403 Forbidden: quota"}, wantCalls: 2,
			wantErr: "acme: create server (GET HOST/x): Forbidden: quota (HTTP 403; after 2 attempts)"},
		{name: "not found", answers: []string{"404 NotFound: no server"}, wantCalls: 1,
			check: func(t *testing.T, e *Error) {
				if !e.NotFound || !IsNotFound(e) || IsNotFound(errors.New("x")) {
					t.Errorf("NotFound %v, IsNotFound %v", e.NotFound, IsNotFound(e))
				}
			}},
		{name: "the call's own Retryable mark counts", answers: []string{"409 Conflict: not yet", "200"}, wrap: true, wantCalls: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCloud(t, tc.answers...)
			waits := 0
			c := testCaller(&waits)
			err := c.Do(t.Context(), "create server", tc.node, func(ctx context.Context) error {
				err := get(ctx, f.URL+"/x")
				if err != nil && tc.wrap {
					return &Retryable{Err: err}
				}
				return err
			})
			if n := f.requests(); n != tc.wantCalls {
				t.Errorf("%d requests, want %d", n, tc.wantCalls)
			}
			if waits != tc.wantCalls-1 {
				t.Errorf("%d backoff waits for %d requests", waits, tc.wantCalls)
			}
			if tc.wantErr == "" && tc.check == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want an *Error", err, err)
			}
			if want := strings.ReplaceAll(tc.wantErr, "HOST", f.URL); want != "" && err.Error() != want {
				t.Errorf("err = %q\nwant  %q", err, want)
			}
			var se *statusError
			if !errors.As(err, &se) {
				t.Errorf("the cause is not reachable with errors.As: %v", errors.Unwrap(err))
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

// TestCallerTimeoutPerAttempt: a hung attempt is cut at Timeout and
// tried again; the caller's context is not shortened.
func TestCallerTimeoutPerAttempt(t *testing.T) {
	f := newFakeCloud(t, "hang", "hang", "200")
	waits := 0
	c := testCaller(&waits)
	c.Timeout = 50 * time.Millisecond
	var deadlines []time.Duration
	start := time.Now()
	err := c.Do(t.Context(), "get server", "", func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		deadlines = append(deadlines, time.Until(d))
		return get(ctx, f.URL)
	})
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if f.requests() != 3 || len(deadlines) != 3 {
		t.Errorf("%d requests, %d attempts; want 3", f.requests(), len(deadlines))
	}
	for i, d := range deadlines {
		if d <= 0 || d > 50*time.Millisecond {
			t.Errorf("attempt %d had %v left, want at most the 50 ms timeout", i, d)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("two timeouts of 50 ms and a success took %v", d)
	}

	// Every attempt timing out: the error says what happened.
	f = newFakeCloud(t, "hang")
	c.Policy.Attempts = 2
	err = c.Do(t.Context(), "get server", "", func(ctx context.Context) error { return get(ctx, f.URL) })
	var e *Error
	if !errors.As(err, &e) || !e.Retryable || e.Attempts != 2 || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "context deadline exceeded (gave up after 2 attempts)") {
		t.Errorf("err = %v", err)
	}
}

// TestCallerStopped: once the caller's context ends nothing is retried,
// and the error says so, with the last answer.
func TestCallerStopped(t *testing.T) {
	f := newFakeCloud(t, "503 RequestLimitExceeded: slow down")
	ctx, cancel := context.WithCancel(t.Context())
	c := &Caller{Provider: "acme", Endpoint: "https://acme.example", Classify: classify,
		Policy: Policy{Attempts: 10, Base: time.Millisecond, Sleep: func(ctx context.Context, d time.Duration) error {
			if f.requests() == 2 {
				cancel() // Ctrl-C while backing off
			}
			return ctx.Err()
		}}}
	err := c.Do(ctx, "create node web", "", func(ctx context.Context) error { return get(ctx, f.URL) })
	want := "acme: create node web (GET " + f.URL + "): stopped: context canceled; last answer: RequestLimitExceeded: slow down (HTTP 503; after 2 attempts)"
	if err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	if f.requests() != 2 {
		t.Errorf("%d requests after the cancellation, want 2", f.requests())
	}

	// Ended while waiting for an answer: the cut request is no news.
	f = newFakeCloud(t, "hang")
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = c.Do(ctx, "create node web", "", func(ctx context.Context) error { return get(ctx, f.URL) })
	want = "acme: create node web (GET " + f.URL + "): stopped: context deadline exceeded"
	if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v\nwant  %s", err, want)
	}

	// Ended before the call.
	calls := 0
	err = c.Do(ctx, "create node web", "", func(context.Context) error { calls++; return nil })
	var e *Error
	if !errors.As(err, &e) || calls != 0 || e.Attempts != 0 || err.Error() != "acme: create node web (https://acme.example): stopped: context deadline exceeded" {
		t.Errorf("err = %v after %d calls", err, calls)
	}
}

// TestCallerScrubs: no secret leaves the Caller, whatever the cloud echoes
// or the URL carries, in any field, in the cause or in the log.
func TestCallerScrubs(t *testing.T) {
	const short, long = "pa55", "pa55-and-more" // one secret contains the other
	f := newFakeCloud(t, "503 AuthFailure: signature by "+long+" and "+short+" does not match")
	var logs bytes.Buffer
	c := &Caller{Provider: "acme", Endpoint: "https://acme.example/?key=" + short, Classify: classify,
		Secrets: []string{short, "", long}, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Policy: Policy{Attempts: 2, Base: time.Millisecond}}
	err := c.Do(t.Context(), "authenticate", "", func(ctx context.Context) error {
		return get(ctx, f.URL+"/tokens?secret="+long)
	})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if want := "signature by [REDACTED] and [REDACTED] does not match"; e.Message != want {
		t.Errorf("Message = %q, want %q (longest secret first)", e.Message, want)
	}
	if want := "GET " + f.URL + "/tokens?secret=[REDACTED]"; e.Endpoint != want {
		t.Errorf("Endpoint = %q, want %q", e.Endpoint, want)
	}
	for what, s := range map[string]string{
		"Error()": err.Error(), "%+v": fmt.Sprintf("%+v", err), "%#v": fmt.Sprintf("%#v", err),
		"the cause": errors.Unwrap(err).Error(), "the log": logs.String(),
	} {
		if strings.Contains(s, short) || !strings.Contains(s, "[REDACTED]") {
			t.Errorf("%s: %s", what, s)
		}
	}
	var se *statusError
	if !errors.As(err, &se) || !strings.Contains(se.body, long) {
		t.Error("the original cause is not reachable with errors.As")
	}

	// Errors found before calling, and the configured endpoint, too.
	c = &Caller{Provider: "acme", Endpoint: "https://acme.example/?key=" + short, Secrets: []string{short}}
	err = c.Fail("create node web", "", errors.New("bad key "+short))
	if want := "acme: create node web (https://acme.example/?key=[REDACTED]): bad key [REDACTED]"; err.Error() != want || errors.Unwrap(err).Error() != "bad key [REDACTED]" {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{Provider: "ec2", Op: "create node web", Endpoint: "https://ec2.example/", Code: 503, ProviderCode: "RequestLimitExceeded", Message: "Request limit exceeded.", Attempts: 6, Retryable: true},
			"ec2: create node web (https://ec2.example/): RequestLimitExceeded: Request limit exceeded. (HTTP 503; gave up after 6 attempts)"},
		{Error{Provider: "ec2", Op: "create node web", Endpoint: "https://ec2.example/", Code: 502, Message: "HTTP 502 Bad Gateway without an EC2 error in the answer", Attempts: 1},
			"ec2: create node web (https://ec2.example/): HTTP 502 Bad Gateway without an EC2 error in the answer"},
		{Error{Provider: "nova", Op: "create server", Node: "n1", Endpoint: "POST https://nova.example/servers", Code: 400, Message: "Invalid flavorRef provided.", Attempts: 1},
			"nova: create server for node n1 (POST https://nova.example/servers): Invalid flavorRef provided. (HTTP 400)"},
		{Error{Provider: "nova", Op: "list flavors", Node: "n1", Endpoint: "GET https://nova.example/flavors", Code: 503, Attempts: 3, Stopped: context.DeadlineExceeded},
			"nova: list flavors for node n1 (GET https://nova.example/flavors): stopped: context deadline exceeded; last answer: HTTP 503 (after 3 attempts)"},
		{Error{Provider: "ec2", Op: "create node web", Endpoint: "https://ec2.example/", Message: `no answer: Post "https://ec2.example/": EOF`, Attempts: 2, Stopped: context.Canceled},
			`ec2: create node web (https://ec2.example/): stopped: context canceled; last error: no answer: Post "https://ec2.example/": EOF (after 2 attempts)`},
		{Error{Provider: "ec2", Op: "create node big", Endpoint: "https://ec2.example/", Message: "user data is 17000 bytes"},
			"ec2: create node big (https://ec2.example/): user data is 17000 bytes"},
		{Error{Provider: "nova", Op: "boot server s1", Node: "n1"}, "nova: boot server s1 for node n1: failed without details"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
