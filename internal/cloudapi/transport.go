package cloudapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Waiter paces the requests to an endpoint: a client-side rate limit.
// resource.Limiter has this shape; Limiters implements it.
type Waiter interface {
	// Wait blocks until one request to endpoint is allowed or ctx ends.
	Wait(ctx context.Context, endpoint string) error
}

// Transport is the http.RoundTripper of every cloud SDK client: before
// each request it waits in Limiter for the request's endpoint, keyed by
// scheme://host, so that every handler sharing the Limiter shares the
// budget of each host, whatever SDK call (a token request, a page of a
// listing) makes the request.
type Transport struct {
	// Base sends the requests; nil is http.DefaultTransport.
	Base http.RoundTripper
	// Limiter paces the requests; nil: no limit.
	Limiter Waiter
}

// RoundTrip implements http.RoundTripper. A wait the request's context
// cannot afford (its deadline would pass first) fails the request as
// Retryable: the attempt is tried again after a backoff, when the budget
// has refilled.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Limiter != nil {
		key := EndpointOf(req.URL)
		if err := t.Limiter.Wait(req.Context(), key); err != nil {
			if req.Body != nil {
				req.Body.Close() // RoundTrip always closes the body
			}
			if req.Context().Err() != nil {
				return nil, err
			}
			return nil, &Retryable{Err: fmt.Errorf("rate limit of %s: %w", key, err)}
		}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// EndpointOf is the key of a URL's rate limit: scheme://host[:port].
func EndpointOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

var _ http.RoundTripper = (*Transport)(nil)
