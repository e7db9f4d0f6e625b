package credential

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// HTTPFetcher returns a Fetcher over HTTPS with client (nil: a default
// client). Plain http is allowed only to loopback addresses (tests). A
// response must be 200 and at most MaxDocumentBytes.
func HTTPFetcher(client *http.Client) Fetcher {
	if client == nil {
		client = &http.Client{}
	}
	return func(ctx context.Context, raw string) ([]byte, error) {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("fetch %q: %w", raw, err)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
			return nil, fmt.Errorf("fetch %s: only https", raw)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", raw, err)
		}
		req.Header.Set("Accept", "application/json, application/ld+json, application/vc+ld+json, application/did+json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", raw, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: %s", raw, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", raw, err)
		}
		if len(b) > MaxDocumentBytes {
			return nil, fmt.Errorf("fetch %s: larger than %d bytes", raw, MaxDocumentBytes)
		}
		return b, nil
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
