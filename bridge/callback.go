package bridge

import (
	"errors"
	"net"
	"net/http"
	"net/url"
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
		Timeout:   30 * time.Second,
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
