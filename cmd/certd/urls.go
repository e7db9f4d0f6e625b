package main

import (
	"errors"
	"fmt"
	neturl "net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// rawUserinfo matches the user info of a URL as text, for URLs that do
// not parse: everything between "//" and the last "@" before the path.
var rawUserinfo = regexp.MustCompile(`//[^/?#]*@`)

// redactURL is a URL fit for logs and messages: the password hidden, also
// when the URL does not parse (then all of its user info is hidden).
func redactURL(raw string) string {
	if u, err := neturl.Parse(raw); err == nil {
		return u.Redacted()
	}
	return scrub(rawUserinfo.ReplaceAllString(raw, "//xxxxx@"), raw)
}

// scrub hides in text the user info of raw, and its password, wherever
// they occur (a URL that does not parse may repeat them elsewhere).
func scrub(text, raw string) string {
	for _, m := range rawUserinfo.FindAllString(raw, -1) {
		info := strings.TrimSuffix(strings.TrimPrefix(m, "//"), "@")
		secrets := []string{info}
		if _, pw, ok := strings.Cut(info, ":"); ok {
			secrets = append(secrets, pw)
		}
		for _, s := range secrets {
			if s != "" {
				text = strings.ReplaceAll(text, s, "xxxxx")
			}
		}
	}
	return text
}

// redactURLs hides the passwords of comma-separated URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// parseURL parses raw; its error never quotes the URL or its user info
// (net/url's errors quote the whole URL, password included).
func parseURL(raw string) (*neturl.URL, error) {
	u, err := neturl.Parse(raw)
	if err == nil {
		return u, nil
	}
	reason := err.Error()
	var ue *neturl.Error
	if errors.As(err, &ue) {
		reason = ue.Err.Error()
	}
	return nil, fmt.Errorf("%s is not a valid URL: %s", redactURL(raw), scrub(reason, raw))
}

// checkServerURLs checks a comma-separated list of server URLs (NATS)
// before anything is dialled, with messages that hide passwords.
func checkServerURLs(s string) error {
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		if _, err := parseURL(p); err != nil {
			return err
		}
	}
	return nil
}

// checkPublicURL checks a public base URL (download-url, verify-url): it
// is printed on certificates and sent to the LMS, so it must be an
// absolute http(s) URL with a host, without user info, query or fragment,
// made of printable ASCII other than quotes, angle brackets and
// backslashes.
func checkPublicURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"'<>\\`{}|^", c) >= 0 {
			return fmt.Errorf("%q has the character %q at %d; use printable ASCII without spaces or quotes (percent-encode the rest)", raw, c, i)
		}
	}
	u, err := parseURL(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q is not an absolute http or https URL", raw)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("%s has user info; the address is public", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q has a query", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q has a fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n := atoiOr(p, -1); n < 1 || n > 65535 {
			return fmt.Errorf("%q has a bad port", raw)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q has an empty port", raw)
	}
	return nil
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" || len(s) > 5 {
		return def
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// storageLoc is the storage setting, parsed once: the URL handed to the
// store and, for file storage, the directory the HTTP server serves.
type storageLoc struct {
	url string // canonical URL for storage.Open
	dir string // file storage: the absolute, cleaned directory
}

// parseStorage parses the storage setting. A file URL may name the local
// host (file://localhost/dir) and percent-encode its path (%20, %23); the
// directory that results is the one both stored into and served, handed
// to the store as a canonical file:///dir URL.
func parseStorage(raw string) (storageLoc, error) {
	u, err := parseURL(strings.TrimSpace(raw))
	if err != nil {
		return storageLoc{}, err
	}
	if u.Scheme != "file" {
		return storageLoc{url: raw}, nil // s3://: the store checks it
	}
	switch {
	case u.Host != "" && u.Host != "localhost":
		return storageLoc{}, fmt.Errorf("%s: a file URL names no other host (file:///abs/dir or file://localhost/abs/dir)", u.Redacted())
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return storageLoc{}, fmt.Errorf("%s: a file URL has no user info, query or fragment (write # as %%23)", u.Redacted())
	case !filepath.IsAbs(u.Path):
		return storageLoc{}, fmt.Errorf("%s: the directory must be an absolute path (file:///abs/dir)", u.Redacted())
	}
	dir := filepath.Clean(u.Path)
	return storageLoc{url: fileURL(dir), dir: dir}, nil
}

// fileURL is the file:// URL of an absolute directory, escaped so that any
// name (spaces, #, %) parses back to the same directory.
func fileURL(dir string) string {
	return (&neturl.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}
