package ec2fake

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// post sends one signed-looking Query API request and returns the status
// and body.
func post(t *testing.T, s *Server, form url.Values) (int, string) {
	t.Helper()
	form.Set("Version", "2016-11-15")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.AccessKey()+"/20261201/"+s.Region()+
		"/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func describe(t *testing.T, s *Server) (int, string) {
	return post(t, s, url.Values{"Action": {"DescribeInstances"}})
}

// run makes an instance of node (tags infra, node) with a token.
func run(t *testing.T, s *Server, infra, node, token string) (int, string) {
	t.Helper()
	return post(t, s, url.Values{
		"Action": {"RunInstances"}, "ImageId": {"ami-1"}, "MinCount": {"1"}, "MaxCount": {"1"}, "ClientToken": {token},
		"TagSpecification.1.ResourceType": {"instance"},
		"TagSpecification.1.Tag.1.Key":    {"infra"}, "TagSpecification.1.Tag.1.Value": {infra},
		"TagSpecification.1.Tag.2.Key": {"node"}, "TagSpecification.1.Tag.2.Value": {node},
	})
}

func TestThrottle(t *testing.T) {
	const n = 400
	pattern := func(seed uint64, frac float64) (string, int) {
		s := New(Options{Throttle: frac, ThrottleSeed: seed})
		defer s.Close()
		var b strings.Builder
		for range n {
			status, body := describe(t, s)
			switch {
			case status == http.StatusServiceUnavailable && strings.Contains(body, "<Code>RequestLimitExceeded</Code>"):
				b.WriteByte('T')
			case status == http.StatusOK:
				b.WriteByte('.')
			default:
				t.Fatalf("answer %d %s", status, body)
			}
		}
		if got, want := s.Throttled(), strings.Count(b.String(), "T"); got != want {
			t.Errorf("Throttled() = %d, %d answers throttled", got, want)
		}
		if got := s.Count("DescribeInstances"); got != n {
			t.Errorf("Count = %d, want %d (throttled requests count)", got, n)
		}
		return b.String(), strings.Count(b.String(), "T")
	}
	tests := []struct {
		name     string
		frac     float64
		min, max int // throttled of n
	}{
		{"off", 0, 0, 0},
		{"30 %", 0.3, n * 20 / 100, n * 40 / 100},
		{"all", 1, n, n},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, na := pattern(7, tc.frac)
			if na < tc.min || na > tc.max {
				t.Errorf("%d of %d throttled, want %d to %d", na, n, tc.min, tc.max)
			}
			if b, _ := pattern(7, tc.frac); b != a {
				t.Errorf("the same seed throttled other requests:\n%s\n%s", a, b)
			}
			if tc.frac > 0 && tc.frac < 1 {
				if c, _ := pattern(8, tc.frac); c == a {
					t.Errorf("seeds 7 and 8 throttled the same requests")
				}
			}
		})
	}
}

func TestPeakLive(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	ids := map[string]string{}
	mk := func(infra, node, token string) {
		t.Helper()
		status, body := run(t, s, infra, node, token)
		if status != http.StatusOK {
			t.Fatalf("run: %d %s", status, body)
		}
		i := strings.Index(body, "<instanceId>")
		ids[token] = body[i+len("<instanceId>") : i+len("<instanceId>")+19]
	}
	term := func(token string) {
		t.Helper()
		if status, body := post(t, s, url.Values{"Action": {"TerminateInstances"}, "InstanceId.1": {ids[token]}}); status != http.StatusOK {
			t.Fatalf("terminate: %d %s", status, body)
		}
	}
	mk("i1", "web", "t1")
	mk("i1", "web", "t1") // the same token: the same instance, not one more
	mk("i1", "web", "t2")
	term("t1")
	mk("i1", "web", "t3") // two live again, never three
	mk("i1", "db", "t4")
	mk("i2", "web", "t5")
	term("t4")
	term("t4") // terminating twice changes nothing
	s.Kill(ids["t5"])
	mk("i2", "web", "t6")
	want := map[string]int{"i1/web": 2, "i1/db": 1, "i2/web": 1}
	got := s.PeakLive("infra", "node")
	if len(got) != len(want) {
		t.Errorf("PeakLive = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("PeakLive[%s] = %d, want %d (all %v)", k, got[k], v, got)
		}
	}
	if got := s.PeakLive("node"); got["web"] != 3 {
		t.Errorf("PeakLive(node)[web] = %d, want 3 (i1's two and i2's one)", got["web"])
	}
}

// A RunInstances whose client gives up during the latency: dropped by
// default, carried out with FinishAbandoned (Close waits for it).
func TestFinishAbandoned(t *testing.T) {
	for _, finish := range []bool{false, true} {
		t.Run(map[bool]string{false: "dropped", true: "finished"}[finish], func(t *testing.T) {
			s := New(Options{RunLatency: 200 * time.Millisecond, FinishAbandoned: finish})
			ctx, cancel := context.WithCancel(t.Context())
			form := url.Values{"Action": {"RunInstances"}, "ImageId": {"ami-1"}, "MinCount": {"1"}, "MaxCount": {"1"}, "Version": {"2016-11-15"}}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.AccessKey()+"/20261201/"+s.Region()+
				"/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32))
			done := make(chan error, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			// Give up once the fake has the request (it counts it first).
			for s.Count("RunInstances") == 0 {
				runtime.Gosched()
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("client: %v, want it cancelled", err)
			}
			s.Close()
			want := 0
			if finish {
				want = 1
			}
			if got := s.Created(); got != want {
				t.Errorf("%d instances made after the client gave up, want %d", got, want)
			}
			if n := s.InFlight(); n != 0 {
				t.Errorf("InFlight = %d after Close, want 0", n)
			}
		})
	}
}
