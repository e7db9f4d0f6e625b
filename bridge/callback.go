package bridge

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// errPrivateAddress is returned when a Submit callback URL resolves to an
// address that is not public (loopback, private, link-local: the cloud
// metadata service, admin ports). Whoever may call Submit must not be able
// to make certd post to the inside of its network.
var errPrivateAddress = errors.New("callback address is not a public address")

// newCallbackClient returns the HTTP client for Submit callbacks: bounded
// time, no redirects (a redirect could lead to a private address), and,
// unless allowPrivate, public destination addresses only — checked on the
// address actually dialled, after DNS.
func newCallbackClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
				ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
				return errPrivateAddress
			}
			return nil
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = nil
	return &http.Client{
		Timeout:   30 * time.Second, // the relay bounds each attempt tighter
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// redactURL is a callback URL fit for logs: query strings and user info
// often carry secrets, so only scheme, host and path are kept.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// errAmbiguousIPv4 refuses hosts written as a number in a form other than
// the dotted quad: 2130706433, 127.1, 0x7f.1, 0177.0.0.1. C resolvers read
// them as addresses (2130706433 is 127.0.0.1), Go's treats them as names:
// either way they serve only to hide an address, so they are refused and
// not retried.
var errAmbiguousIPv4 = errors.New("callback host is a number but not a dotted-quad IPv4 address (decimal, short, octal or hex forms are refused)")

// numericHost matches host names made only of numbers (decimal, octal or
// hex), one to four parts.
var numericHost = regexp.MustCompile(`(?i)^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$`)

// callbackHost checks a callback URL before any connection and returns
// its host:port (the per-host limit's key).
func callbackHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("callback URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
		return "", errors.New("callback URL is not an http(s) URL with a host")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() && strings.Count(host, ".") != 3 {
			return "", errAmbiguousIPv4
		}
	} else if numericHost.MatchString(host) {
		return "", errAmbiguousIPv4
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(host, port), nil
}
