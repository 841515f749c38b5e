package rest

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Without a token, the only thing between a web page the operator visits
// and this API is the browser's same-origin policy, which lets any site
// send "simple" requests (a form post, a fetch with a text/plain body) and,
// with DNS rebinding, read the answers. So, when no token is configured:
//   - the Host header must name this service (a loopback name or address,
//     or the configured host): a rebound name is refused;
//   - an Origin header, which browsers send with every cross-site request,
//     must be this service's own;
//   - a request that changes something may not carry a body type a browser
//     sends without a CORS preflight (form encodings, text/plain).
// With a token none of this is needed (a page cannot attach the
// Authorization header without a preflight this service never grants).

// crossSite reports why a request is refused as cross-site, with the
// status to answer; "" when it may proceed.
func (s *Server) crossSite(r *http.Request) (int, string) {
	if s.cfg.Token != "" {
		return 0, ""
	}
	host := hostOnly(r.Host)
	if !s.ownHost(host) {
		return http.StatusForbidden, "Host " + quoteHost(r.Host) + " does not name this service; without a token only requests to " + s.cfg.Host + " or a loopback name are served (set a token to serve other names)"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if o == "null" || err != nil || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, "requests from the web page at " + quoteHost(o) + " are refused: without a token only this service's own pages may call it"
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return 0, ""
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch strings.ToLower(mt) {
		case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
			return http.StatusUnsupportedMediaType, "Content-Type " + mt + " is refused without a token (a web page on another site could send it); send descriptions as application/yaml (curl: -H 'Content-Type: application/yaml'), or set a token"
		}
	}
	return 0, ""
}

// ownHost reports whether a Host header's host part names this service.
func (s *Server) ownHost(host string) bool {
	if isLoopback(host) {
		return true
	}
	if want := strings.Trim(s.cfg.Host, "[]"); want != "" && strings.EqualFold(host, want) && !isUnspecified(want) {
		return true
	}
	// Listening on every address without a token (--insecure): clients
	// use whatever name reaches the machine; Origin and body checks stay.
	return isUnspecified(strings.Trim(s.cfg.Host, "[]"))
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// hostOnly strips the port of a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

func quoteHost(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
