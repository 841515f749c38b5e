package cloudapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	perm := errors.New("InvalidAMIID.NotFound")
	cases := []struct {
		name      string
		errs      []error // returned by successive calls; nil = success
		wantCalls int
		wantErr   error
	}{
		{"success at once", []error{nil}, 1, nil},
		{"throttled twice then ok", []error{&Retryable{errors.New("RequestLimitExceeded")}, &Retryable{errors.New("503")}, nil}, 3, nil},
		{"permanent error is not retried", []error{perm}, 1, perm},
		{"gives up after attempts", []error{&Retryable{perm}, &Retryable{perm}, &Retryable{perm}}, 3, perm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var waits []time.Duration
			p := Policy{Attempts: 3, Base: 100 * time.Millisecond, Max: 150 * time.Millisecond,
				Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
			calls := 0
			err := p.Do(t.Context(), func(context.Context) error {
				e := tc.errs[calls]
				calls++
				return e
			})
			if calls != tc.wantCalls {
				t.Errorf("calls %d, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if len(waits) != max(0, calls-1) {
				t.Errorf("%d waits for %d calls", len(waits), calls)
			}
			for i, w := range waits {
				limit := min(100*time.Millisecond<<i, 150*time.Millisecond)
				if w < 0 || w > limit {
					t.Errorf("wait %d = %s, want within [0, %s]", i, w, limit)
				}
			}
		})
	}
}

func TestDoStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := Policy{Attempts: 10, Base: time.Hour}.Do(ctx, func(context.Context) error {
		calls++
		cancel()
		return &Retryable{errors.New("throttled")}
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v after %d calls, want canceled after 1", err, calls)
	}
}

func TestLimiters(t *testing.T) {
	l := NewLimiters(1000, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	for range 5 {
		if err := l.Wait(ctx, "https://a"); err != nil {
			t.Fatal(err)
		}
	}
	// A separate endpoint has its own budget.
	if err := l.Wait(ctx, "https://b"); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatalf("5 calls at 1000/s took %s", time.Since(start))
	}
	var none *Limiters // no limit
	for range 100 {
		if err := none.Wait(ctx, "https://a"); err != nil {
			t.Fatal(err)
		}
	}
	slow := NewLimiters(0.001, 1)
	_ = slow.Wait(ctx, "x") // uses the burst
	c2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	if err := slow.Wait(c2, "x"); err == nil {
		t.Fatal("second call within the limit's window must wait past the deadline")
	}
}

func TestClassify(t *testing.T) {
	for code, want := range map[int]bool{429: true, 500: true, 502: true, 503: true, 504: true, 400: false, 401: false, 404: false, 409: false, 501: false} {
		if RetryableStatus(code) != want {
			t.Errorf("RetryableStatus(%d) = %v", code, !want)
		}
	}
	cases := []struct {
		err  error
		want bool
	}{
		{syscall.ECONNRESET, true},
		{fmt.Errorf("post: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: syscall.EPIPE}, true},
		{errors.New("read tcp: connection reset by peer"), true},
		{errors.New("InvalidAMIID.NotFound"), false},
		{context.Canceled, false},
	}
	for _, tc := range cases {
		if Transient(tc.err) != tc.want {
			t.Errorf("Transient(%v) = %v", tc.err, !tc.want)
		}
	}
}
