package rest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Webhooks make this service send requests where a user says, which turns
// it into a port scanner of its own network (delivery counts in /metrics
// tell open from closed ports) and a way to reach cloud metadata services
// and their credentials. So webhook targets are checked twice: the URL
// when notify stores it, and the address actually dialled at delivery (a
// name may resolve anywhere, and resolve again differently).

// metadataAddrs are cloud instance-metadata services outside link-local.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud (classic)
}

// metadataNames are host names of metadata services.
var metadataNames = []string{"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}

// egressPolicy decides where webhooks may go: never link-local,
// unspecified, multicast or metadata addresses, never URLs with
// credentials; and when an allow-list is set, only the hosts and
// networks it names.
type egressPolicy struct {
	hosts []string       // exact host names, or ".example.org" for a domain
	nets  []netip.Prefix // allowed networks
}

// newEgressPolicy reads webhook_allow entries: CIDRs, IP addresses, host
// names, or ".domain" suffixes.
func newEgressPolicy(allow []string) (*egressPolicy, error) {
	p := &egressPolicy{}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case strings.Contains(a, "/"):
			pf, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("webhook_allow %q: not a network: %w", a, err)
			}
			p.nets = append(p.nets, pf.Masked())
		default:
			if ip, err := netip.ParseAddr(a); err == nil {
				p.nets = append(p.nets, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			p.hosts = append(p.hosts, strings.ToLower(a))
		}
	}
	return p, nil
}

func (p *egressPolicy) restricted() bool { return len(p.hosts) > 0 || len(p.nets) > 0 }

// checkURL is the check at notify time.
func (p *egressPolicy) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("webhook %q: want an http or https URL", redactURL(raw))
	}
	if u.User != nil {
		return badRequest("webhook %q: credentials in the URL are refused (they would be stored and logged)", redactURL(raw))
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := forbidden(ip); why != "" {
			return badRequest("webhook %q: %s addresses are refused", raw, why)
		}
		if p.restricted() && !p.allowsIP(ip) {
			return badRequest("webhook %q: %s is not in webhook_allow of occopus_config.yaml", raw, ip)
		}
		return nil
	}
	for _, m := range metadataNames {
		if host == m {
			return badRequest("webhook %q: metadata services are refused", raw)
		}
	}
	if p.restricted() && !p.allowsHost(host) {
		return badRequest("webhook %q: host %s is not in webhook_allow of occopus_config.yaml", raw, host)
	}
	return nil
}

func (p *egressPolicy) allowsIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *egressPolicy) allowsHost(host string) bool {
	for _, h := range p.hosts {
		if host == h || (strings.HasPrefix(h, ".") && strings.HasSuffix(host, h)) {
			return true
		}
	}
	return false
}

// forbidden says why an address may never receive a webhook, "" if it may.
func forbidden(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link-local (cloud metadata)"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast():
		return "multicast"
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return "metadata service"
		}
	}
	return ""
}

// control is the dialer's check of the address a delivery connects to,
// after name resolution.
func (p *egressPolicy) control(hostAllowed func() bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook: dial %s: %w", address, err)
		}
		if why := forbidden(ap.Addr()); why != "" {
			return fmt.Errorf("webhook: %s resolves to %s: %s addresses are refused", address, ap.Addr(), why)
		}
		if p.restricted() && !hostAllowed() && !p.allowsIP(ap.Addr()) {
			return fmt.Errorf("webhook: %s is not in webhook_allow", ap.Addr())
		}
		return nil
	}
}

// client is the HTTP client of webhook deliveries: no redirects (a
// redirect would go around the checks), no proxy from the environment,
// and the dial-time check.
func (p *egressPolicy) client(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        16,
		IdleConnTimeout:     time.Minute,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			allowedName := p.allowsHost(strings.ToLower(host))
			d := &net.Dialer{Timeout: timeout, Control: p.control(func() bool { return allowedName })}
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// redactURL hides the password of a URL that carries one.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
