// Package pages renders the two public HTML pages certd stores next to each
// certificate: cert/<verify_uuid>/valid.html ("this certificate is valid",
// or "revoked") and cert/<verify_uuid>/verify.html (how to check the
// signature and the credential yourself), and reads the links back out of
// verify.html for `certd verify --url`.
//
// Invariants:
//   - The pages are self-contained (inline CSS, no scripts, no external
//     assets), responsive, printable and accessible.
//   - Everything that comes from a job is escaped by html/template after
//     control and bidi-override characters are removed; every link is an
//     absolute http(s) URL (the one exception is verify.html's relative link
//     back to valid.html).
//   - A revoked certificate's valid.html never calls it valid: its title,
//     heading and status say "revoked", with the date and the reason, and it
//     offers no wallet or LinkedIn link. The PDF stays linked for the record.
//   - The credential, wallet and LinkedIn links are optional: they appear
//     only when their data is given, so a site or course with credentials
//     turned off gets exactly the pages it got before.
//   - ParseVerifyLinks reads pages written by every certd version: the
//     credential link is optional, the PDF, signature and key links are not.
package pages

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/html"

	"github.com/certd-dev/certd/internal/credential"
)

// ErrInvalid is returned (wrapped) when a Certificate lacks a required field
// or has a link that is not an absolute http(s) URL. It is permanent.
var ErrInvalid = errors.New("pages: invalid certificate data")

// ErrNoLinks is returned (wrapped) by ParseLinks when the page does not have
// the links of a certd verify.html.
var ErrNoLinks = errors.New("pages: verification links not found")

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

	// IssuedAt is the issue date as a time, for LinkedIn's issue year and
	// month (taken in IssuedAt's own location). Optional: when it is zero
	// valid.html has no "Add to LinkedIn profile" link.
	IssuedAt time.Time
	// ValidURL is the absolute URL of this certificate's valid.html, the
	// address LinkedIn shows (certUrl). Optional: VerifyURL is used when it
	// is empty, and without either there is no LinkedIn link.
	ValidURL string
	// CredentialURL is the absolute URL of the certificate's Open Badges 3.0
	// credential, cert/<verify_uuid>/credential.json. Optional: empty when
	// credentials are off for the site or course (or VERIFY is false); the
	// wallet link and verify.html's "Check the credential" section are then
	// absent.
	CredentialURL string
	// IssuerDID is the credential issuer's DID ("did:web:certs.example.org"
	// or "did:key:z6Mk…"), shown on verify.html next to the credential
	// (so only when CredentialURL is set), with a link to the DID document
	// for did:web. Optional; it must be a syntactically valid DID when given.
	IssuerDID string
	// Revoked, when not nil, marks the certificate revoked: valid.html says
	// so (title, heading, status, date and reason) instead of "valid".
	Revoked *Revocation
}

// Revocation says when and why a certificate was revoked.
type Revocation struct {
	// At is when the certificate was revoked; zero when unknown.
	At time.Time
	// Date is At as the site formats dates ("December 6th, 2026");
	// when empty, At is shown in UTC as "6 December 2026".
	Date string
	// Reason is the issuer's reason, plain text; optional.
	Reason string
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
	DownloadURL, SignatureURL, PublicKeyURL, VerifyURL, ValidURL                  string
	Fingerprint, FingerprintGrouped, KeyID, Commands                              string

	CredentialURL, IssuerDID, DIDDocumentURL, CertdVerify string
	LinkedInURL                                           string

	Revoked                                bool
	RevokedDate, RevokedISO, RevokedReason string
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
		{"ValidURL", c.ValidURL, &v.ValidURL},
		{"CredentialURL", c.CredentialURL, &v.CredentialURL},
	} {
		if strings.TrimSpace(u.in) == "" {
			continue
		}
		if *u.out, err = checkURL(u.in); err != nil {
			return view{}, fmt.Errorf("%w: %s: %v", ErrInvalid, u.name, err)
		}
	}
	if did := strings.TrimSpace(c.IssuerDID); did != "" {
		if !isDID(did) {
			return view{}, fmt.Errorf("%w: IssuerDID %q is not a DID", ErrInvalid, clipText(did))
		}
		v.IssuerDID = did
		v.DIDDocumentURL = didDocumentURL(did)
	}
	if v.CredentialURL != "" {
		// `certd verify --url` takes the certificate's folder, the one
		// that holds credential.json, verify.html and valid.html.
		u, _ := url.Parse(v.CredentialURL)
		v.CertdVerify = "certd verify --url " + shellQuote(strings.TrimSuffix(u.ResolveReference(&url.URL{Path: "."}).String(), "/"))
	}
	if r := c.Revoked; r != nil {
		v.Revoked = true
		v.RevokedDate = cleanText(r.Date, 128)
		if !r.At.IsZero() {
			v.RevokedISO = r.At.UTC().Format(time.RFC3339)
			if v.RevokedDate == "" {
				v.RevokedDate = r.At.UTC().Format("2 January 2006")
			}
		}
		v.RevokedReason = cleanText(r.Reason, maxFieldLen)
	} else {
		v.LinkedInURL = linkedInURL(v, c.IssuedAt)
	}
	return v, nil
}

// LinkedIn's "add to profile" address for certifications.
const linkedInAddURL = "https://www.linkedin.com/profile/add"

// LinkedInURL returns the "Add to LinkedIn profile" address valid.html links
// for c: LinkedIn's add-to-profile form for a certification, filled in with
// the course name, organisation, issue year and month, the certificate's
// page (ValidURL, else VerifyURL) and its id. It returns "" (and no error)
// when c has no IssuedAt, no page URL, or is revoked.
func LinkedInURL(c Certificate) (string, error) {
	v, err := newView(c)
	if err != nil {
		return "", err
	}
	return v.LinkedInURL, nil
}

func linkedInURL(v view, issued time.Time) string {
	certURL := v.ValidURL
	if certURL == "" {
		certURL = v.VerifyURL
	}
	if issued.IsZero() || certURL == "" {
		return ""
	}
	params := [][2]string{
		{"startTask", "CERTIFICATION_NAME"},
		{"name", v.CourseName},
		{"organizationName", v.Org},
		{"issueYear", strconv.Itoa(issued.Year())},
		{"issueMonth", strconv.Itoa(int(issued.Month()))},
		{"certUrl", certURL},
		{"certId", v.CertificateID},
	}
	var q strings.Builder
	for _, p := range params {
		if p[1] == "" {
			continue // only organizationName can be empty
		}
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(url.QueryEscape(p[0]))
		q.WriteByte('=')
		q.WriteString(url.QueryEscape(p[1]))
	}
	return linkedInAddURL + "?" + q.String()
}

// didSyntax is the DID syntax of W3C DID Core: did:<method>:<method-specific-id>.
var didSyntax = regexp.MustCompile(`^did:[a-z0-9]+:(?:(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})*:)*(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+$`)

func isDID(s string) bool { return len(s) <= 2048 && didSyntax.MatchString(s) }

// didDocumentURL returns where a did:web DID's document is published
// (https://<host>/.well-known/did.json, or https://<host>/<path>/did.json),
// or "" for other methods and hosts that are not valid.
func didDocumentURL(did string) string {
	doc, err := credential.DIDWebDocumentURL(did)
	if err != nil {
		return ""
	}
	host, err := url.PathUnescape(strings.SplitN(strings.TrimPrefix(did, "did:web:"), ":", 2)[0]) // a port is written %3A
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@\\%") {
		return ""
	}
	out, err := checkURL(doc)
	if err != nil {
		return ""
	}
	if u, err := url.Parse(out); err != nil || u.Host != host {
		return ""
	}
	return out
}

func clipText(s string) string { return cleanText(s, 80) }

// Valid renders valid.html: the certificate is valid, to whom, for which
// course, from which organisation, when, its type and id, with links to the
// PDF and to verify.html, the credential (with how to add it to a wallet)
// and LinkedIn's add-to-profile form when given. When c.Revoked is set the
// page says the certificate was revoked, when and why, and keeps only the
// PDF and verify.html links.
func Valid(c Certificate) ([]byte, error) {
	v, err := newView(c)
	if err != nil {
		return nil, err
	}
	return render(validTmpl, v)
}

// Verify renders verify.html: links to the PDF, its signature and the
// public key, the key's fingerprint and id, and the gpg commands that check
// the signature; when CredentialURL is given, a "Check the credential"
// section with the credential, the issuer's DID and the `certd verify --url`
// command; when Revoked is set, a notice that the certificate was revoked.
// DownloadURL, SignatureURL, PublicKeyURL and KeyFingerprint are required.
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
// It is ParseVerifyLinks without the credential's link and DID (a page
// whose credential link or DID is malformed is refused all the same).
func ParseLinks(verifyHTML []byte) (pdf, sig, publicKey string, err error) {
	l, err := ParseVerifyLinks(verifyHTML)
	if err != nil {
		return "", "", "", err
	}
	return l.PDF, l.Signature, l.PublicKey, nil
}

// Links are the links of a certd verify.html.
type Links struct {
	// PDF, Signature and PublicKey are always present.
	PDF, Signature, PublicKey string
	// Credential is the Open Badges 3.0 credential's URL; "" on pages of
	// certificates without a credential (and pages older than credentials).
	Credential string
	// IssuerDID is the DID the page names as the credential's issuer; "" when
	// the page names none.
	IssuerDID string
}

// ParseVerifyLinks reads the links of a certd verify.html: the <a> elements
// marked data-role="certificate-pdf", "signature", "public-key" (required)
// and "credential" (optional), and the issuer's DID (data-role="issuer-did",
// optional). Every link must be an absolute http(s) URL and the DID a valid
// DID; otherwise the error wraps ErrNoLinks.
func ParseVerifyLinks(verifyHTML []byte) (Links, error) {
	doc, err := html.Parse(bytes.NewReader(verifyHTML))
	if err != nil {
		return Links{}, fmt.Errorf("%w: parse HTML: %v", ErrNoLinks, err)
	}
	found := map[string]string{}
	var did string
	var hasDID bool
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data != "a" && !hasDID {
			for _, a := range n.Attr {
				if a.Key == "data-role" && a.Val == "issuer-did" {
					did, hasDID = strings.TrimSpace(nodeText(n)), true
				}
			}
		}
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
	var l Links
	for _, f := range []struct {
		role     string
		optional bool
		out      *string
	}{
		{"certificate-pdf", false, &l.PDF},
		{"signature", false, &l.Signature},
		{"public-key", false, &l.PublicKey},
		{"credential", true, &l.Credential},
	} {
		href, ok := found[f.role]
		if !ok && f.optional {
			continue
		}
		if !ok {
			return Links{}, fmt.Errorf("%w: no link with data-role=%q", ErrNoLinks, f.role)
		}
		if *f.out, err = checkURL(href); err != nil {
			return Links{}, fmt.Errorf("%w: %s link: %v", ErrNoLinks, f.role, err)
		}
	}
	if hasDID {
		if !isDID(did) {
			return Links{}, fmt.Errorf("%w: issuer DID %q is not a DID", ErrNoLinks, clipText(did))
		}
		l.IssuerDID = did
	}
	return l, nil
}

func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode && b.Len() < 4096 {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
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
