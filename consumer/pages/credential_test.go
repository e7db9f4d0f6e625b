package pages

import (
	"errors"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// withCredential is sample() as a site with credentials on issues it.
func withCredential() Certificate {
	c := sample()
	c.IssuedAt = time.Date(2012, time.February, 2, 10, 0, 0, 0, time.UTC)
	c.ValidURL = "https://certs.example.org/cert/0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c/valid.html"
	c.CredentialURL = "https://certs.example.org/cert/0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c/credential.json"
	c.IssuerDID = "did:web:certs.example.org"
	return c
}

func revoked() Certificate {
	c := withCredential()
	c.Revoked = &Revocation{At: time.Date(2026, time.December, 6, 15, 4, 5, 0, time.UTC), Reason: "Academic misconduct found after review"}
	return c
}

func (p *page) roles(role string) []*html.Node {
	return p.all(func(n *html.Node) bool { v, _ := attr(n, "data-role"); return n.Type == html.ElementNode && v == role })
}

// visibleText is everything a reader sees or hears: the title and the body
// text (not attribute values, not the style sheet).
func (p *page) visibleText() string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "style" {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.root)
	return b.String()
}

func (p *page) title() string {
	return text(p.all(func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "title" })[0])
}

func TestLinkedInURL(t *testing.T) {
	c := withCredential()
	got, err := LinkedInURL(c)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != "www.linkedin.com" || u.Path != "/profile/add" || u.Fragment != "" {
		t.Errorf("LinkedIn URL %q: wrong address", got)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"startTask":        "CERTIFICATION_NAME",
		"name":             "Demonstration Course",
		"organizationName": "Example University",
		"issueYear":        "2012",
		"issueMonth":       "2",
		"certUrl":          c.ValidURL,
		"certId":           "0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c",
	}
	if len(q) != len(want) {
		t.Errorf("parameters %v, want exactly %v", q, want)
	}
	for k, v := range want {
		if len(q[k]) != 1 || q[k][0] != v {
			t.Errorf("%s = %q, want %q", k, q[k], v)
		}
	}
	// The parameters come in LinkedIn's documented order.
	if !strings.HasPrefix(u.RawQuery, "startTask=CERTIFICATION_NAME&name=") || !strings.HasSuffix(u.RawQuery, "&certId=0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c") {
		t.Errorf("query %q", u.RawQuery)
	}

	// Text with &, =, #, + and non-ASCII letters stays inside its parameter.
	c.CourseName, c.Org = "C++ & Go = fun #1 / Äpfel 100%", "Université de Genève & Co"
	c.IssuedAt = time.Date(2025, time.December, 31, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))
	got, _ = LinkedInURL(c)
	u, _ = url.Parse(got)
	q, _ = url.ParseQuery(u.RawQuery)
	if q.Get("name") != c.CourseName || q.Get("organizationName") != c.Org || len(q) != 7 {
		t.Errorf("hostile text broke the query: %q -> %v", got, q)
	}
	// Year and month are IssuedAt's own (the local date the site printed),
	// not UTC's, and the month has no leading zero.
	if q.Get("issueYear") != "2025" || q.Get("issueMonth") != "12" {
		t.Errorf("issue year/month %s/%s, want 2025/12", q.Get("issueYear"), q.Get("issueMonth"))
	}
	c.IssuedAt = time.Date(2024, time.January, 5, 0, 0, 0, 0, time.UTC)
	got, _ = LinkedInURL(c)
	if !strings.Contains(got, "&issueYear=2024&issueMonth=1&") {
		t.Errorf("January: %q", got)
	}

	// certUrl falls back to the verify page; no organisation, no parameter.
	c = withCredential()
	c.ValidURL, c.Org = "", ""
	got, _ = LinkedInURL(c)
	u, _ = url.Parse(got)
	q, _ = url.ParseQuery(u.RawQuery)
	if q.Get("certUrl") != c.VerifyURL || q.Has("organizationName") {
		t.Errorf("fallback: %v", q)
	}

	// No link without an issue date, a page to point at, or when revoked.
	for name, mut := range map[string]func(*Certificate){
		"no IssuedAt": func(c *Certificate) { c.IssuedAt = time.Time{} },
		"no page URL": func(c *Certificate) { c.ValidURL, c.VerifyURL = "", "" },
		"revoked":     func(c *Certificate) { c.Revoked = &Revocation{} },
	} {
		c := withCredential()
		mut(&c)
		if got, err := LinkedInURL(c); got != "" || err != nil {
			t.Errorf("%s: LinkedInURL = %q, %v; want no link", name, got, err)
		}
		if n := len(parse(t, must(Valid(c))).roles("linkedin")); n != 0 {
			t.Errorf("%s: valid.html has %d LinkedIn links", name, n)
		}
	}
}

func TestValidPageLinksCredentialAndLinkedIn(t *testing.T) {
	c := withCredential()
	p := parse(t, must(Valid(c)))
	checkPageBasics(t, p)
	if got := p.link("credential"); got != c.CredentialURL {
		t.Errorf("credential link %q", got)
	}
	cred := p.roles("credential")[0]
	if got := text(cred); got != "Open Badges 3.0 credential — add it to your wallet" {
		t.Errorf("credential link text %q", got)
	}
	help := text(p.roles("wallet-help")[0])
	for _, want := range []string{"Learner Credential Wallet", "Add Credential", "Paste JSON or URL", "Other wallets"} {
		if !strings.Contains(help, want) {
			t.Errorf("wallet help lacks %q: %s", want, help)
		}
	}
	wantLinkedIn, _ := LinkedInURL(c)
	if got := p.link("linkedin"); got != wantLinkedIn {
		t.Errorf("LinkedIn link %q, want %q", got, wantLinkedIn)
	}
	if got := text(p.roles("linkedin")[0]); got != "Add to LinkedIn profile" {
		t.Errorf("LinkedIn link text %q", got)
	}
	if got := p.link("verify-page"); got != c.VerifyURL {
		t.Errorf("verify link %q", got)
	}
	if !strings.Contains(text(p.roles("verify-page")[0]), "credential") {
		t.Errorf("the how-to-verify link does not mention the credential")
	}
	if p.title() != "Valid Statement of Accomplishment: Jane Doe – Demonstration Course" {
		t.Errorf("title %q", p.title())
	}

	// Credentials off (per course or site) and no issue time: exactly the
	// links of before, and no word about wallets.
	c.CredentialURL, c.IssuerDID, c.IssuedAt = "", "", time.Time{}
	p = parse(t, must(Valid(c)))
	if len(p.roles("credential"))+len(p.roles("linkedin"))+len(p.roles("wallet-help")) != 0 {
		t.Errorf("credential or LinkedIn links shown with credentials off")
	}
	if strings.Contains(strings.ToLower(p.visibleText()), "wallet") || strings.Contains(p.visibleText(), "Keep and share") {
		t.Errorf("wallet text shown with credentials off")
	}
	if got := text(p.roles("verify-page")[0]); got != "Check the digital signature yourself" {
		t.Errorf("verify link text %q", got)
	}
	// LinkedIn alone (credentials off, issue time known).
	c.IssuedAt = time.Date(2012, 2, 2, 0, 0, 0, 0, time.UTC)
	p = parse(t, must(Valid(c)))
	if len(p.roles("linkedin")) != 1 || len(p.roles("credential")) != 0 {
		t.Errorf("LinkedIn without a credential: %d LinkedIn, %d credential links", len(p.roles("linkedin")), len(p.roles("credential")))
	}
}

func TestVerifyPageChecksTheCredential(t *testing.T) {
	c := withCredential()
	b := must(Verify(c))
	p := parse(t, b)
	checkPageBasics(t, p)
	h2 := p.all(func(n *html.Node) bool {
		return n.Type == html.ElementNode && n.Data == "h2" && strings.Contains(text(n), "Check the credential")
	})
	if len(h2) != 1 {
		t.Fatalf("%d 'Check the credential' headings", len(h2))
	}
	if got := p.link("credential"); got != c.CredentialURL {
		t.Errorf("credential link %q", got)
	}
	if got := text(p.roles("issuer-did")[0]); got != c.IssuerDID {
		t.Errorf("issuer DID shown as %q", got)
	}
	if got := p.link("did-document"); got != "https://certs.example.org/.well-known/did.json" {
		t.Errorf("DID document link %q", got)
	}
	cmd := text(p.roles("certd-verify")[0])
	if want := "certd verify --url 'https://certs.example.org/cert/0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c'"; cmd != want {
		t.Errorf("certd command %q, want %q", cmd, want)
	}
	section := text(h2[0].Parent)
	for _, want := range []string{"signature", "proof", "digest", "validFrom", "validUntil", "revocation", "REVOKED"} {
		if !strings.Contains(section, want) {
			t.Errorf("'Check the credential' does not mention %q", want)
		}
	}

	l, err := ParseVerifyLinks(b)
	if err != nil {
		t.Fatal(err)
	}
	if (l != Links{PDF: c.DownloadURL, Signature: c.SignatureURL, PublicKey: c.PublicKeyURL, Credential: c.CredentialURL, IssuerDID: c.IssuerDID}) {
		t.Errorf("ParseVerifyLinks = %+v", l)
	}
	pdf, sig, pub, err := ParseLinks(b)
	if err != nil || pdf != c.DownloadURL || sig != c.SignatureURL || pub != c.PublicKeyURL {
		t.Errorf("ParseLinks = %q %q %q %v", pdf, sig, pub, err)
	}

	// A DID with a path: its document lives under that path.
	c.IssuerDID = "did:web:certs.example.org%3A8443:edx:certs"
	p = parse(t, must(Verify(c)))
	if got := p.link("did-document"); got != "https://certs.example.org:8443/edx/certs/did.json" {
		t.Errorf("did:web with port and path: %q", got)
	}
	// did:key has no document to fetch.
	c.IssuerDID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
	p = parse(t, must(Verify(c)))
	if len(p.roles("did-document")) != 0 || text(p.roles("issuer-did")[0]) != c.IssuerDID {
		t.Errorf("did:key shown wrongly")
	}

	// Credentials off: no section, and the page parses as before.
	c.CredentialURL, c.IssuerDID = "", ""
	b = must(Verify(c))
	p = parse(t, b)
	if len(p.roles("credential"))+len(p.roles("issuer-did"))+len(p.roles("certd-verify")) != 0 || strings.Contains(p.visibleText(), "Check the credential") {
		t.Errorf("credential section shown with credentials off")
	}
	if l, err := ParseVerifyLinks(b); err != nil || l.Credential != "" || l.IssuerDID != "" || l.PDF != c.DownloadURL {
		t.Errorf("ParseVerifyLinks without credential = %+v, %v", l, err)
	}
}

func TestParseVerifyLinksReadsOldPages(t *testing.T) {
	// verify.html as certd wrote it before credentials existed (rendered
	// from sample() by that version); pages in storage look like this.
	old, err := os.ReadFile("testdata/verify-before-credentials.html")
	if err != nil {
		t.Fatal(err)
	}
	c := sample()
	l, err := ParseVerifyLinks(old)
	if err != nil {
		t.Fatal(err)
	}
	if (l != Links{PDF: c.DownloadURL, Signature: c.SignatureURL, PublicKey: c.PublicKeyURL}) {
		t.Errorf("old page: %+v", l)
	}
	pdf, sig, pub, err := ParseLinks(old)
	if err != nil || pdf != c.DownloadURL || sig != c.SignatureURL || pub != c.PublicKeyURL {
		t.Errorf("ParseLinks(old page) = %q %q %q %v", pdf, sig, pub, err)
	}

	// A bad credential link or DID is refused, not ignored.
	base := `<a data-role="certificate-pdf" href="https://a/c.pdf">p</a><a data-role="signature" href="https://a/c.sig">s</a><a data-role="public-key" href="https://a/k">k</a>`
	for name, extra := range map[string]string{
		"javascript credential": `<a data-role="credential" href="javascript:alert(1)">c</a>`,
		"relative credential":   `<a data-role="credential" href="credential.json">c</a>`,
		"bad DID":               `<code data-role="issuer-did">did:web:evil.example/<x></code>`,
	} {
		if _, err := ParseVerifyLinks([]byte(base + extra)); !errors.Is(err, ErrNoLinks) {
			t.Errorf("%s: ParseVerifyLinks = %v, want ErrNoLinks", name, err)
		}
	}
}

var wordValid = regexp.MustCompile(`(?i)\bvalid\b`)

func TestRevokedPage(t *testing.T) {
	c := revoked()
	p := parse(t, must(Valid(c)))
	checkPageBasics(t, p)
	if m := wordValid.FindString(p.visibleText()); m != "" {
		t.Errorf("a revoked page says %q:\n%s", m, p.visibleText())
	}
	if !strings.HasPrefix(p.title(), "Revoked Statement of Accomplishment: Jane Doe") {
		t.Errorf("title %q", p.title())
	}
	h1 := text(p.all(func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "h1" })[0])
	if h1 != "This Statement of Accomplishment has been revoked" {
		t.Errorf("h1 %q", h1)
	}
	status := p.all(func(n *html.Node) bool { v, _ := attr(n, "role"); return v == "status" })
	if len(status) != 1 {
		t.Fatalf("%d status elements", len(status))
	}
	if st, _ := attr(status[0], "data-state"); st != "revoked" || !strings.Contains(text(status[0]), "Revoked.") || !strings.Contains(text(status[0]), "6 December 2026") {
		t.Errorf("status %q (state %q)", text(status[0]), st)
	}
	if got := p.field("revoked-date"); got != "6 December 2026" {
		t.Errorf("revoked date %q", got)
	}
	date := p.all(func(n *html.Node) bool { v, _ := attr(n, "data-field"); return v == "revoked-date" })[0]
	if dt, _ := attr(date, "datetime"); date.Data != "time" || dt != "2026-12-06T15:04:05Z" {
		t.Errorf("revoked date element <%s datetime=%q>", date.Data, dt)
	}
	if got := p.field("revoked-reason"); got != c.Revoked.Reason {
		t.Errorf("reason %q", got)
	}
	// The PDF stays, for the record, marked as revoked; no invitation to
	// put a revoked certificate in a wallet or on LinkedIn.
	if p.link("certificate-pdf") != c.DownloadURL || !strings.Contains(text(p.roles("certificate-pdf")[0]), "revoked") {
		t.Errorf("PDF link %q", text(p.roles("certificate-pdf")[0]))
	}
	if len(p.roles("credential"))+len(p.roles("linkedin"))+len(p.roles("wallet-help")) != 0 {
		t.Errorf("a revoked page invites adding it to a wallet or LinkedIn")
	}
	if p.link("verify-page") != c.VerifyURL {
		t.Errorf("no verify link on a revoked page")
	}

	// The site's own date format wins; no date and no reason still read well.
	c.Revoked = &Revocation{At: c.Revoked.At, Date: "December 6th, 2026"}
	p = parse(t, must(Valid(c)))
	if p.field("revoked-date") != "December 6th, 2026" || p.field("revoked-reason") != "No reason was given." {
		t.Errorf("date %q, reason %q", p.field("revoked-date"), p.field("revoked-reason"))
	}
	c.Revoked, c.Org = &Revocation{}, ""
	p = parse(t, must(Valid(c)))
	if p.hasField("revoked-date") || wordValid.MatchString(p.visibleText()) || !strings.Contains(p.visibleText(), "The issuer revoked this") {
		t.Errorf("revoked without date or org:\n%s", p.visibleText())
	}

	// verify.html says so too, before anything else in <main>.
	p = parse(t, must(Verify(revoked())))
	notice := p.all(func(n *html.Node) bool { v, _ := attr(n, "data-state"); return v == "revoked" })
	if len(notice) != 1 {
		t.Fatalf("verify.html has %d revoked notices", len(notice))
	}
	for _, want := range []string{"was revoked on 6 December 2026", "Reason: " + revoked().Revoked.Reason, "REVOKED"} {
		if !strings.Contains(text(notice[0]), want) {
			t.Errorf("verify.html revoked notice %q lacks %q", text(notice[0]), want)
		}
	}
	if !strings.Contains(p.title(), "revoked") {
		t.Errorf("verify.html title %q", p.title())
	}
	if _, err := ParseVerifyLinks(must(Verify(revoked()))); err != nil {
		t.Errorf("revoked verify.html does not parse: %v", err)
	}
}

func TestRevokedReasonIsEscaped(t *testing.T) {
	for name, reason := range map[string]string{
		"script":      `<script>alert(1)</script>`,
		"breakout":    `"></bdi></dd><dt>Status</dt><dd>Valid`,
		"bidi":        "Fraud \u202Edilav si\u202C",
		"controls":    "a\x00b\x1b[31mc\r\nd",
		"entity":      "&lt;b&gt; &amp;",
		"long":        strings.Repeat("x", 5000),
		"valid claim": "This certificate is valid",
	} {
		t.Run(name, func(t *testing.T) {
			c := revoked()
			c.Revoked.Reason = reason
			c.Revoked.Date = reason
			for pageName, render := range map[string]func(Certificate) ([]byte, error){"valid": Valid, "verify": Verify} {
				p := parse(t, must(render(c))) // well-formed, no live markup, no controls, no bidi overrides
				if got, want := p.field("revoked-reason"), cleanText(reason, maxFieldLen); got != want {
					t.Errorf("%s: reason shown as %q, want %q", pageName, got, want)
				}
				if name == "script" && p.field("revoked-reason") != reason {
					t.Errorf("%s: the reason should be shown literally, as text", pageName)
				}
				if name == "breakout" && p.elements("dt") != strings.Count(string(must(render(revoked()))), "<dt>") {
					t.Errorf("%s: the reason added definition terms", pageName)
				}
			}
			// Only the issuer's own words can say "valid", and only inside the
			// reason: the page itself never does.
			p := parse(t, must(Valid(c)))
			rest := strings.ReplaceAll(strings.ReplaceAll(p.visibleText(), cleanText(reason, maxFieldLen), ""), cleanText(reason, 128), "")
			if m := wordValid.FindString(rest); m != "" {
				t.Errorf("revoked page says %q", m)
			}
		})
	}
}

func TestCredentialFieldsAreChecked(t *testing.T) {
	for name, mut := range map[string]func(*Certificate){
		"javascript credential": func(c *Certificate) { c.CredentialURL = "javascript:alert(1)" },
		"relative credential":   func(c *Certificate) { c.CredentialURL = "credential.json" },
		"ftp valid URL":         func(c *Certificate) { c.ValidURL = "ftp://certs.example.org/valid.html" },
		"DID with markup":       func(c *Certificate) { c.IssuerDID = `did:web:<script>` },
		"DID with space":        func(c *Certificate) { c.IssuerDID = "did:web:a b" },
		"not a DID":             func(c *Certificate) { c.IssuerDID = "https://certs.example.org" },
		"upper-case method":     func(c *Certificate) { c.IssuerDID = "did:WEB:certs.example.org" },
		"empty last segment":    func(c *Certificate) { c.IssuerDID = "did:web:certs.example.org:" },
	} {
		c := withCredential()
		mut(&c)
		for pageName, render := range map[string]func(Certificate) ([]byte, error){"valid": Valid, "verify": Verify} {
			if _, err := render(c); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %s = %v, want ErrInvalid", name, pageName, err)
			}
		}
	}
	for did, want := range map[string]string{
		"did:web:example.com":                                      "https://example.com/.well-known/did.json",
		"did:web:w3c-ccg.github.io:user:alice":                     "https://w3c-ccg.github.io/user/alice/did.json",
		"did:web:localhost%3A8443":                                 "https://localhost:8443/.well-known/did.json",
		"did:web:evil.example%2Fx":                                 "",
		"did:web:a%40b.example":                                    "",
		"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK": "",
	} {
		if got := didDocumentURL(did); got != want {
			t.Errorf("didDocumentURL(%q) = %q, want %q", did, got, want)
		}
	}
}
