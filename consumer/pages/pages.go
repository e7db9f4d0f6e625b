// Package pages renders the two public HTML pages certd stores next to each
// certificate: cert/<verify_uuid>/valid.html ("this certificate is valid")
// and cert/<verify_uuid>/verify.html (how to check the signature yourself),
// and reads the links back out of verify.html for `certd verify --url`.
//
// The pages are self-contained (inline CSS, no scripts, no external assets),
// responsive, printable and accessible. Everything that comes from a job is
// escaped by html/template after control and bidi-override characters are
// removed, and links must be absolute http(s) URLs.
package pages

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// ErrInvalid is returned (wrapped) when a Certificate lacks a required field
// or has a link that is not an absolute http(s) URL. It is permanent.
var ErrInvalid = errors.New("pages: invalid certificate data")

// ErrNoLinks is returned (wrapped) by ParseLinks when the page does not have
// the links of a certd verify.html.
var ErrNoLinks = errors.New("pages: verification links not found")

// IsPermanent reports whether err means the input is bad (retrying cannot help).
func IsPermanent(err error) bool { return errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoLinks) }

// Certificate is what the pages show. All text is plain text (not HTML).
type Certificate struct {
	// Name is the learner's name as printed on the certificate; Designation
	// is an optional title shown after it.
	Name, Designation string
	// CourseName is the course title, CourseID its Open edX id.
	CourseName, CourseID string
	// Org is the issuing organisation's long name.
	Org string
	// IssuedDate is the issue date, already formatted ("February 2nd, 2012").
	IssuedDate string
	// CertificateType is the site's word for a certificate ("Certificate",
	// "Statement of Accomplishment"); "Certificate" when empty.
	CertificateType string
	// CertificateID identifies the certificate (certd uses the verify uuid).
	CertificateID string
	// DownloadURL, SignatureURL and PublicKeyURL are absolute http(s) URLs of
	// the PDF, its detached signature and the armored signing public key.
	DownloadURL, SignatureURL, PublicKeyURL string
	// KeyFingerprint is the signing key's 40-hex-digit fingerprint; KeyID its
	// 16-hex-digit long id (derived from the fingerprint when empty).
	KeyFingerprint, KeyID string
	// VerifyURL is the absolute URL of this certificate's verify.html,
	// linked from valid.html (optional).
	VerifyURL string
	// Grade is optional ("Pass", "Distinction").
	Grade string
	// Verified marks a verified certificate (an ID-verified learner): the
	// pages call it "Verified <CertificateType>".
	Verified bool
}

// Limits on displayed text, in characters; longer text is cut with "…".
const (
	maxNameLen  = 512
	maxFieldLen = 1024
)

//go:embed templates/*.html
var templateFS embed.FS

var (
	validTmpl  = template.Must(template.New("valid.html").ParseFS(templateFS, "templates/valid.html", "templates/style.html"))
	verifyTmpl = template.Must(template.New("verify.html").ParseFS(templateFS, "templates/verify.html", "templates/style.html"))
)

type view struct {
	Name, Designation, CourseName, CourseID, Org, IssuedDate, Type, CertificateID string
	Grade                                                                         string
	DownloadURL, SignatureURL, PublicKeyURL, VerifyURL                            string
	Fingerprint, FingerprintGrouped, KeyID, Commands                              string
}

func newView(c Certificate) (view, error) {
	v := view{
		Name:          cleanText(c.Name, maxNameLen),
		Designation:   cleanText(c.Designation, maxFieldLen),
		CourseName:    cleanText(c.CourseName, maxFieldLen),
		CourseID:      cleanText(c.CourseID, maxFieldLen),
		Org:           cleanText(c.Org, maxFieldLen),
		IssuedDate:    cleanText(c.IssuedDate, maxFieldLen),
		Type:          cleanText(c.CertificateType, 128),
		CertificateID: cleanText(c.CertificateID, 128),
		Grade:         cleanText(c.Grade, maxFieldLen),
	}
	if v.Type == "" {
		v.Type = "Certificate"
	}
	if c.Verified {
		v.Type = "Verified " + v.Type
	}
	for field, val := range map[string]string{"Name": v.Name, "CourseName": v.CourseName, "CertificateID": v.CertificateID} {
		if val == "" {
			return view{}, fmt.Errorf("%w: %s is empty", ErrInvalid, field)
		}
	}
	var err error
	for _, u := range []struct {
		name string
		in   string
		out  *string
	}{
		{"DownloadURL", c.DownloadURL, &v.DownloadURL},
		{"SignatureURL", c.SignatureURL, &v.SignatureURL},
		{"PublicKeyURL", c.PublicKeyURL, &v.PublicKeyURL},
		{"VerifyURL", c.VerifyURL, &v.VerifyURL},
	} {
		if strings.TrimSpace(u.in) == "" {
			continue
		}
		if *u.out, err = checkURL(u.in); err != nil {
			return view{}, fmt.Errorf("%w: %s: %v", ErrInvalid, u.name, err)
		}
	}
	return v, nil
}

// Valid renders valid.html: the certificate is valid, to whom, for which
// course, from which organisation, when, its type and id, with links to the
// PDF and to verify.html when given.
func Valid(c Certificate) ([]byte, error) {
	v, err := newView(c)
	if err != nil {
		return nil, err
	}
	return render(validTmpl, v)
}

// Verify renders verify.html: links to the PDF, its signature and the
// public key, the key's fingerprint and id, and the gpg commands that check
// the signature. DownloadURL, SignatureURL, PublicKeyURL and KeyFingerprint
// are required.
func Verify(c Certificate) ([]byte, error) {
	v, err := newView(c)
	if err != nil {
		return nil, err
	}
	for field, val := range map[string]string{"DownloadURL": v.DownloadURL, "SignatureURL": v.SignatureURL, "PublicKeyURL": v.PublicKeyURL} {
		if val == "" {
			return nil, fmt.Errorf("%w: %s is required for verify.html", ErrInvalid, field)
		}
	}
	fpr := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(c.KeyFingerprint), " ", ""))
	if !isHex(fpr) || (len(fpr) != 40 && len(fpr) != 64) {
		return nil, fmt.Errorf("%w: KeyFingerprint %q is not 40 (or 64) hex digits", ErrInvalid, c.KeyFingerprint)
	}
	v.Fingerprint = fpr
	v.FingerprintGrouped = groupFingerprint(fpr)
	keyID := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(c.KeyID), " ", ""))
	switch {
	case keyID == "" && len(fpr) == 40:
		keyID = fpr[24:]
	case keyID == "":
		keyID = fpr[:16]
	case !isHex(keyID) || len(keyID) != 16:
		return nil, fmt.Errorf("%w: KeyID %q is not 16 hex digits", ErrInvalid, c.KeyID)
	}
	v.KeyID = keyID
	v.Commands = strings.Join([]string{
		"curl -fsSL -o Certificate.pdf " + shellQuote(v.DownloadURL),
		"curl -fsSL -o Certificate.pdf.sig " + shellQuote(v.SignatureURL),
		"curl -fsSL -o signing-key.asc " + shellQuote(v.PublicKeyURL),
		"gpg --import signing-key.asc",
		"gpg --verify Certificate.pdf.sig Certificate.pdf",
	}, "\n")
	return render(verifyTmpl, v)
}

func render(t *template.Template, v view) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(8 << 10)
	if err := t.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("pages: render %s: %w", t.Name(), err)
	}
	return buf.Bytes(), nil
}

// ParseLinks reads the PDF, signature and public-key links from a certd
// verify.html (the <a> elements marked data-role="certificate-pdf",
// "signature" and "public-key"). Each must be an absolute http(s) URL.
func ParseLinks(verifyHTML []byte) (pdf, sig, publicKey string, err error) {
	doc, err := html.Parse(bytes.NewReader(verifyHTML))
	if err != nil {
		return "", "", "", fmt.Errorf("%w: parse HTML: %v", ErrNoLinks, err)
	}
	found := map[string]string{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			var role, href string
			var hasHref bool
			for _, a := range n.Attr {
				switch a.Key {
				case "data-role":
					role = a.Val
				case "href":
					href, hasHref = a.Val, true
				}
			}
			if _, dup := found[role]; hasHref && role != "" && !dup {
				found[role] = href
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	out := make([]string, 3)
	for i, role := range []string{"certificate-pdf", "signature", "public-key"} {
		href, ok := found[role]
		if !ok {
			return "", "", "", fmt.Errorf("%w: no link with data-role=%q", ErrNoLinks, role)
		}
		if out[i], err = checkURL(href); err != nil {
			return "", "", "", fmt.Errorf("%w: %s link: %v", ErrNoLinks, role, err)
		}
	}
	return out[0], out[1], out[2], nil
}

// checkURL accepts only absolute http and https URLs with a host, and
// returns them in normalised form.
func checkURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.IsSpace(r) {
			return "", fmt.Errorf("URL %q contains a space or control character", s)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("bad URL: %v", err)
	}
	if sch := strings.ToLower(u.Scheme); sch != "http" && sch != "https" {
		return "", fmt.Errorf("URL %q: only http and https links are allowed", s)
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("URL %q has no host", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("URL %q must not carry credentials", s)
	}
	return u.String(), nil
}

// cleanText makes job text safe to display: invalid UTF-8 becomes U+FFFD;
// C0 and C1 control characters, bidi embedding/override/isolate controls
// (which could make a name display as something else), line/paragraph
// separators and noncharacters are removed (whitespace controls become a
// space); runs of spaces collapse; text longer than max characters is cut
// with "…". Letters of every script, combining marks and ZWJ/ZWNJ stay.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(min(len(s), max*4))
	n := 0
	space := false
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0x2028 || r == 0x2029 || unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			continue
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			continue
		case r == 0xfffe || r == 0xffff || (r >= 0xfdd0 && r <= 0xfdef):
			continue
		}
		if space {
			if n++; n > max {
				break
			}
			b.WriteByte(' ')
			space = false
		}
		if n++; n > max {
			break
		}
		b.WriteRune(r)
	}
	out := b.String()
	if n > max {
		out = strings.TrimRightFunc(out, unicode.IsSpace) + "…"
	}
	return out
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// groupFingerprint formats a v4 fingerprint as gpg prints it:
// "28D3 89D1 CCA5 6B44 5FF6  BB61 75A9 2B2A 91BB 1F11".
func groupFingerprint(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
			if len(f) == 40 && i == 20 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(f[i:min(i+4, len(f))])
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
