// Package cloudapi is the one way the cloud backends (ec2, nova) call
// their clouds:
//
//   - Transport, the http.RoundTripper under every SDK client, waits for
//     the client-side rate limit of the request's endpoint (scheme://host)
//     before every HTTP request: calls, token requests, pagination;
//   - a Caller (one per handler) runs each logical call through the retry
//     Policy, with a timeout per attempt, classifies failures through the
//     provider's Classify, and returns one error type, *Error, with the
//     handler's secrets removed from every string;
//   - Policy retries with full-jitter exponential backoff on errors marked
//     Retryable, never on permanent ones; RetryableStatus and Transient
//     help the classifiers.
//
// The SDKs' own retries are off, so every attempt is counted here once.
package cloudapi

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// Retryable marks an error as worth another try. Handlers classify their
// SDK's errors (throttling codes, HTTP 429/5xx, connection resets) and
// wrap them with it.
type Retryable struct{ Err error }

func (r *Retryable) Error() string { return r.Err.Error() }
func (r *Retryable) Unwrap() error { return r.Err }

// IsRetryable reports whether err was marked Retryable.
func IsRetryable(err error) bool {
	var r *Retryable
	return errors.As(err, &r)
}

// Policy says how to retry.
type Policy struct {
	// Attempts is the total number of tries (default 6).
	Attempts int
	// Base is the first backoff (default 200 ms); it doubles each time up
	// to Max (default 10 s). The actual wait is uniformly random in
	// [0, backoff] ("full jitter"), so clients hitting one limit spread out.
	Base, Max time.Duration
	// Sleep waits; tests replace it. It must return early with ctx.Err()
	// when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p Policy) withDefaults() Policy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	return p
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Do calls fn until it succeeds, returns an error not marked Retryable,
// the attempts run out, or ctx ends. The last error is returned.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	p = p.withDefaults()
	backoff := p.Base
	var err error
	for attempt := 1; ; attempt++ {
		if err = ctx.Err(); err != nil {
			return err
		}
		err = fn(ctx)
		if err == nil || !IsRetryable(err) || attempt >= p.Attempts {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(backoff) + 1))
		if serr := p.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
		backoff = min(backoff*2, p.Max)
	}
}

// Default client-side rate limit per endpoint: under the request-rate
// buckets of public clouds, so that building many nodes at once rarely
// meets throttling. The engine makes one Limiters of these per Manager.
const (
	DefaultRate  = 10 // calls per second
	DefaultBurst = 20
)

// Limiters hands out one rate limiter per endpoint, shared by every
// handler that is given it.
type Limiters struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	m     map[string]*rate.Limiter
}

var _ Waiter = (*Limiters)(nil)

// NewLimiters allows perSecond calls per endpoint with the given burst.
func NewLimiters(perSecond float64, burst int) *Limiters {
	return &Limiters{rate: rate.Limit(perSecond), burst: burst, m: map[string]*rate.Limiter{}}
}

// Wait blocks until a call to endpoint is allowed or ctx ends. A nil
// *Limiters never waits.
func (l *Limiters) Wait(ctx context.Context, endpoint string) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	lim, ok := l.m[endpoint]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[endpoint] = lim
	}
	l.mu.Unlock()
	return lim.Wait(ctx)
}

// RetryableStatus reports the HTTP statuses worth another try whatever
// the provider's error code: throttling and gateway or server trouble.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Transient reports a connection cut before an answer arrived (reset,
// EOF, broken pipe, a network timeout): the request may or may not have
// been carried out, so only calls that are safe to repeat retry on it.
func Transient(err error) bool {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "connection reset by peer") {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
