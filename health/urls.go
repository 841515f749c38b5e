package health

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/occopus-go/occopus/descr"
)

// DefaultURLTimeout bounds one HTTP GET of the urls primitive.
const DefaultURLTimeout = 5 * time.Second

func init() {
	Register(Plugin{Type: "urls", Schema: descr.ListOf(descr.String), New: newURLProbes})
}

// URLProbe GETs URL (a template rendered at check time with the node's data
// plus `ip`) and passes on a 2xx or 3xx status. Redirects are not followed:
// a 3xx already shows the service answers.
type URLProbe struct {
	URL     string
	Timeout time.Duration // default DefaultURLTimeout
}

func newURLProbes(v any) ([]Probe, error) {
	l, err := asList(v)
	if err != nil {
		return nil, err
	}
	out := make([]Probe, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("url %v: want a non-empty string, got %T", e, e)
		}
		out = append(out, &URLProbe{URL: s, Timeout: DefaultURLTimeout})
	}
	return out, nil
}

func (p *URLProbe) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	r := Result{Primitive: "urls"}
	raw, err := render(p.URL, t)
	if err != nil {
		return fail(r, start, "url %s: %v", p.URL, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail(r, start, "url %s: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail(r, start, "url %s: scheme must be http or https", raw)
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(p.Timeout, DefaultURLTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fail(r, start, "url %s: %v", raw, err)
	}
	resp, err := urlClient.Do(req)
	if err != nil {
		return fail(r, start, "url %s: %v", raw, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return pass(r, start, "url %s: %s", raw, resp.Status)
	}
	return fail(r, start, "url %s: %s", raw, resp.Status)
}

// urlClient is shared by all URL probes. TLS certificates ARE verified
// (the default): a health check must not teach users that broken TLS is
// healthy. Keep-alives are off so that idle checks hold no connections to
// instances that may be torn down at any time. The proxy still comes from
// the environment, as with Occopus's Python requests.
var urlClient = &http.Client{
	Transport: func() http.RoundTripper {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		return tr
	}(),
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // 3xx is healthy; don't chase it
	},
}
