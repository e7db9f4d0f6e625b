package pages

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
)

func sample() Certificate {
	return Certificate{
		Name:            "Jane Doe",
		Designation:     "PhD",
		CourseName:      "Demonstration Course",
		CourseID:        "course-v1:edX+DemoX+Demo_Course",
		Org:             "Example University",
		IssuedDate:      "February 2nd, 2012",
		CertificateType: "Statement of Accomplishment",
		CertificateID:   "0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c",
		DownloadURL:     "https://certs.example.org/downloads/5d1f0c3e9a8b4c7d8e9f0a1b2c3d4e5f/Certificate.pdf",
		SignatureURL:    "https://certs.example.org/cert/0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c/Certificate.pdf.sig",
		PublicKeyURL:    "https://certs.example.org/signing-key.asc",
		KeyFingerprint:  "28D389D1CCA56B445FF6BB6175A92B2A91BB1F11",
		VerifyURL:       "https://certs.example.org/cert/0f3c9a4e8b7d4c2a9e1f5b6d7c8a9b0c/verify.html",
		Grade:           "Distinction",
	}
}

// page is a parsed output page.
type page struct {
	t    *testing.T
	raw  []byte
	root *html.Node
}

func parse(t *testing.T, b []byte) *page {
	t.Helper()
	checkWellFormed(t, b)
	root, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("html.Parse: %v", err)
	}
	return &page{t: t, raw: b, root: root}
}

func (p *page) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.root)
	return out
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// field returns the text of the element(s) with data-field=name (all equal).
func (p *page) field(name string) string {
	p.t.Helper()
	ns := p.all(func(n *html.Node) bool { v, _ := attr(n, "data-field"); return n.Type == html.ElementNode && v == name })
	if len(ns) == 0 {
		p.t.Fatalf("no element with data-field=%q", name)
	}
	return text(ns[0])
}

func (p *page) hasField(name string) bool {
	return len(p.all(func(n *html.Node) bool { v, _ := attr(n, "data-field"); return n.Type == html.ElementNode && v == name })) > 0
}

func (p *page) link(role string) string {
	p.t.Helper()
	ns := p.all(func(n *html.Node) bool {
		v, _ := attr(n, "data-role")
		return n.Type == html.ElementNode && n.Data == "a" && v == role
	})
	if len(ns) != 1 {
		p.t.Fatalf("%d links with data-role=%q, want 1", len(ns), role)
	}
	href, _ := attr(ns[0], "href")
	return href
}

func (p *page) elements(tag string) int {
	return len(p.all(func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }))
}

// checkWellFormed tokenizes b strictly: every non-void element is closed in
// order, no raw control characters, no bidi overrides, no event handlers,
// no scripts or embedded content, and every URL attribute is http(s) or
// the relative link to valid.html.
func checkWellFormed(t *testing.T, b []byte) {
	t.Helper()
	for i, r := range string(b) {
		if r == unicode.ReplacementChar && !bytes.Contains(b[i:min(i+3, len(b))], []byte("\uFFFD")) {
			t.Fatalf("invalid UTF-8 at byte %d", i)
		}
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			t.Fatalf("raw control character %U at byte %d", r, i)
		}
		if (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			t.Fatalf("bidi control %U at byte %d", r, i)
		}
	}
	void := map[string]bool{"meta": true, "br": true, "link": true, "img": true, "hr": true, "input": true}
	var stack []string
	z := html.NewTokenizer(bytes.NewReader(b))
	styles := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			switch tok.Data {
			case "script", "iframe", "object", "embed", "img", "svg", "math", "form", "input", "link", "base", "frame":
				t.Fatalf("forbidden element <%s> in output", tok.Data)
			case "style":
				styles++
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(strings.ToLower(a.Key), "on") || a.Key == "style" || a.Key == "srcdoc" {
					t.Fatalf("forbidden attribute %s=%q on <%s>", a.Key, a.Val, tok.Data)
				}
				if a.Key == "href" || a.Key == "src" || a.Key == "action" {
					if !strings.HasPrefix(a.Val, "https://") && !strings.HasPrefix(a.Val, "http://") && a.Val != "valid.html" {
						t.Fatalf("%s=%q is not an http(s) URL", a.Key, a.Val)
					}
				}
			}
			if tt == html.StartTagToken && !void[tok.Data] {
				stack = append(stack, tok.Data)
			}
		case html.EndTagToken:
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				t.Fatalf("unbalanced </%s>; open elements %v", tok.Data, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements %v", stack)
	}
	if styles != 1 {
		t.Fatalf("%d <style> elements, want 1 (the page's own)", styles)
	}
}

func TestValidPage(t *testing.T) {
	c := sample()
	b, err := Valid(c)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, b)
	for field, want := range map[string]string{
		"name": c.Name, "designation": c.Designation, "course": c.CourseName, "course-id": c.CourseID,
		"org": c.Org, "issued": c.IssuedDate, "type": c.CertificateType, "certificate-id": c.CertificateID, "grade": c.Grade,
	} {
		if got := p.field(field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if got := p.link("certificate-pdf"); got != c.DownloadURL {
		t.Errorf("PDF link %q", got)
	}
	if got := p.link("verify-page"); got != c.VerifyURL {
		t.Errorf("verify link %q", got)
	}
	h1 := p.all(func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "h1" })
	if len(h1) != 1 || text(h1[0]) != "This Statement of Accomplishment is valid" {
		t.Errorf("h1 = %q", text(h1[0]))
	}
	checkPageBasics(t, p)
	name := p.all(func(n *html.Node) bool { v, _ := attr(n, "data-field"); return v == "name" })[0]
	if d, _ := attr(name, "dir"); d != "auto" {
		t.Errorf("name element has dir=%q, want auto", d)
	}

	// The word for certificates comes from settings; default "Certificate".
	c.CertificateType, c.Grade, c.Designation, c.VerifyURL = "", "", "", ""
	p = parse(t, must(Valid(c)))
	if got := p.field("type"); got != "Certificate" {
		t.Errorf("default type %q", got)
	}
	if p.hasField("grade") || p.hasField("designation") {
		t.Errorf("empty optional fields are shown")
	}
	if strings.Contains(string(p.raw), "statement") {
		t.Errorf("old type word leaked")
	}
}

func checkPageBasics(t *testing.T, p *page) {
	t.Helper()
	htmlEl := p.all(func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "html" })[0]
	if l, _ := attr(htmlEl, "lang"); l == "" {
		t.Errorf("<html> has no lang")
	}
	var viewport, robots bool
	for _, m := range p.all(func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "meta" }) {
		name, _ := attr(m, "name")
		content, _ := attr(m, "content")
		viewport = viewport || (name == "viewport" && strings.Contains(content, "width=device-width"))
		robots = robots || (name == "robots" && content == "noindex")
	}
	if !viewport || !robots {
		t.Errorf("viewport meta %v, robots noindex %v", viewport, robots)
	}
	for _, tag := range []string{"main", "header", "footer", "h1", "title"} {
		if p.elements(tag) != 1 {
			t.Errorf("%d <%s> elements, want 1", p.elements(tag), tag)
		}
	}
	if !bytes.Contains(p.raw, []byte("@media print")) {
		t.Errorf("no print styles")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestVerifyPageAndParseLinks(t *testing.T) {
	c := sample()
	b, err := Verify(c)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, b)
	checkPageBasics(t, p)
	if p.field("name") != c.Name || p.field("course") != c.CourseName || p.field("certificate-id") != c.CertificateID {
		t.Errorf("summary fields wrong")
	}
	for role, want := range map[string]string{"certificate-pdf": c.DownloadURL, "signature": c.SignatureURL, "public-key": c.PublicKeyURL, "valid-page": "valid.html"} {
		if got := p.link(role); got != want {
			t.Errorf("link %s = %q, want %q", role, got, want)
		}
	}
	fpr := p.all(func(n *html.Node) bool { v, _ := attr(n, "data-role"); return v == "fingerprint" })[0]
	if got := text(fpr); got != "28D3 89D1 CCA5 6B44 5FF6  BB61 75A9 2B2A 91BB 1F11" {
		t.Errorf("fingerprint shown as %q (want gpg's grouping)", got)
	}
	if v, _ := attr(fpr, "data-value"); v != c.KeyFingerprint {
		t.Errorf("fingerprint data-value %q", v)
	}
	keyID := p.all(func(n *html.Node) bool { v, _ := attr(n, "data-role"); return v == "key-id" })[0]
	if text(keyID) != "75A92B2A91BB1F11" {
		t.Errorf("key id %q (derived from the fingerprint)", text(keyID))
	}
	cmds := text(p.all(func(n *html.Node) bool { v, _ := attr(n, "data-role"); return v == "commands" })[0])
	for _, want := range []string{
		"curl -fsSL -o Certificate.pdf '" + c.DownloadURL + "'",
		"curl -fsSL -o Certificate.pdf.sig '" + c.SignatureURL + "'",
		"gpg --import signing-key.asc",
		"gpg --verify Certificate.pdf.sig Certificate.pdf",
	} {
		if !strings.Contains(cmds, want) {
			t.Errorf("commands lack %q:\n%s", want, cmds)
		}
	}

	pdf, sig, pub, err := ParseLinks(b)
	if err != nil || pdf != c.DownloadURL || sig != c.SignatureURL || pub != c.PublicKeyURL {
		t.Errorf("ParseLinks = %q %q %q %v", pdf, sig, pub, err)
	}
	// A valid.html (or any other page) is not a verify page.
	if _, _, _, err := ParseLinks(must(Valid(c))); !errors.Is(err, ErrNoLinks) {
		t.Errorf("ParseLinks(valid.html) = %v, want ErrNoLinks", err)
	}
	evil := []byte(`<a data-role="certificate-pdf" href="javascript:alert(1)">x</a><a data-role="signature" href="https://a/b.sig">s</a><a data-role="public-key" href="https://a/k">k</a>`)
	if _, _, _, err := ParseLinks(evil); !errors.Is(err, ErrNoLinks) {
		t.Errorf("ParseLinks accepted a javascript: link: %v", err)
	}

	// Required for verify.html.
	for name, mut := range map[string]func(*Certificate){
		"no signature URL": func(c *Certificate) { c.SignatureURL = "" },
		"no fingerprint":   func(c *Certificate) { c.KeyFingerprint = "" },
		"bad fingerprint":  func(c *Certificate) { c.KeyFingerprint = "28D389D1CCA56B44<b>" },
		"bad key id":       func(c *Certificate) { c.KeyID = "xyz" },
	} {
		c := sample()
		mut(&c)
		if _, err := Verify(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}
}

func TestHostileInput(t *testing.T) {
	long := strings.Repeat("Ж", 20000)
	for name, hostile := range map[string]string{
		"script":        `<script>alert(1)</script>`,
		"attr breakout": `"><img src=x onerror=alert(1)>`,
		"single quote":  `' onmouseover='alert(1)`,
		"controls":      "Eve\x00\x01\x07\x1b[31m\x7f\u0085\u009bRed\r\nNext",
		"bidi override": "Mallory \u202Efdp.exe\u202C and \u2066isolate\u2069",
		"invalid utf8":  "Bad \xff\xfe bytes",
		"long":          long,
		"comment":       "<!-- x --> ]]> <![CDATA[ x ]]>",
		"entity":        "&lt;b&gt; &amp; &#0;",
	} {
		t.Run(name, func(t *testing.T) {
			for _, base := range []Certificate{sample(), withCredential(), revoked()} {
				c := base
				c.Name, c.Designation, c.CourseName, c.Org, c.Grade, c.CertificateType, c.IssuedDate =
					hostile, hostile, hostile, hostile, hostile, hostile, hostile
				if c.Revoked != nil {
					c.Revoked = &Revocation{At: c.Revoked.At, Date: hostile, Reason: hostile}
				}
				for pageName, render := range map[string]func(Certificate) ([]byte, error){"valid": Valid, "verify": Verify} {
					b, err := render(c)
					if err != nil {
						t.Fatalf("%s: %v", pageName, err)
					}
					p := parse(t, b) // well-formed, no live markup, no controls, no bidi overrides
					shown := p.field("name")
					want := cleanText(hostile, maxNameLen)
					if shown != want {
						t.Fatalf("%s: name shown as %q, want %q", pageName, shown, want)
					}
					if name == "script" && shown != hostile {
						t.Fatalf("the name should be shown literally, as text: %q", shown)
					}
					if name == "long" && (len([]rune(shown)) > maxNameLen+1 || !strings.HasSuffix(shown, "…")) {
						t.Fatalf("a 20,000-character name is shown as %d characters", len([]rune(shown)))
					}
					if len(b) > 64<<10 {
						t.Fatalf("%s page is %d bytes", pageName, len(b))
					}
					if pageName != "valid" || c.IssuedAt.IsZero() || c.Revoked != nil {
						continue
					}
					// The LinkedIn link carries the hostile text as data only.
					lu, err := url.Parse(p.link("linkedin"))
					if err != nil || lu.Host != "www.linkedin.com" || lu.Query().Get("name") != cleanText(hostile, maxFieldLen) || len(lu.Query()) != 7 {
						t.Fatalf("%s: LinkedIn link %q", pageName, p.link("linkedin"))
					}
				}
			}
		})
	}
	// Right-to-left names keep their letters.
	if got := cleanText("  مريم   العلي\u200c ", 100); got != "مريم العلي\u200c" {
		t.Errorf("cleanText(RTL) = %q", got)
	}
}

func TestURLsMustBeHTTP(t *testing.T) {
	for _, bad := range []string{
		"javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
		"vbscript:x", "file:///etc/passwd", "ftp://example.org/x", "//evil.example/x", "/relative/path",
		"http://", "https://user:pw@example.org/x", "https://exa mple.org/", "https://example.org/\x00", "java\tscript:alert(1)",
	} {
		for field, mut := range map[string]func(*Certificate, string){
			"DownloadURL":   func(c *Certificate, u string) { c.DownloadURL = u },
			"SignatureURL":  func(c *Certificate, u string) { c.SignatureURL = u },
			"PublicKeyURL":  func(c *Certificate, u string) { c.PublicKeyURL = u },
			"VerifyURL":     func(c *Certificate, u string) { c.VerifyURL = u },
			"ValidURL":      func(c *Certificate, u string) { c.ValidURL = u },
			"CredentialURL": func(c *Certificate, u string) { c.CredentialURL = u },
		} {
			c := sample()
			mut(&c, bad)
			if _, err := Verify(c); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify with %s=%q: %v, want ErrInvalid", field, bad, err)
			}
			if _, err := Valid(c); !errors.Is(err, ErrInvalid) {
				t.Errorf("Valid with %s=%q: %v, want ErrInvalid", field, bad, err)
			}
		}
	}
	// Query strings (e.g. presigned URLs) survive, escaped for HTML.
	c := sample()
	c.DownloadURL = "https://bucket.example.org/downloads/x/Certificate.pdf?X-Amz-Signature=ab&X-Amz-Date=1"
	b := must(Verify(c))
	pdf, _, _, err := ParseLinks(b)
	if err != nil || pdf != c.DownloadURL {
		t.Errorf("ParseLinks with a query string: %q, %v", pdf, err)
	}
	if !bytes.Contains(b, []byte("&amp;X-Amz-Date")) {
		t.Errorf("& in an href is not escaped")
	}
}

func TestRequiredFields(t *testing.T) {
	for name, mut := range map[string]func(*Certificate){
		"no name":           func(c *Certificate) { c.Name = "" },
		"only controls":     func(c *Certificate) { c.Name = "\x00\u202e \t" },
		"no course":         func(c *Certificate) { c.CourseName = "" },
		"no certificate id": func(c *Certificate) { c.CertificateID = "" },
	} {
		c := sample()
		mut(&c)
		if _, err := Valid(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Valid = %v, want ErrInvalid", name, err)
		}
	}
}

func BenchmarkPages(b *testing.B) {
	for name, c := range map[string]Certificate{"plain": sample(), "credential": withCredential(), "revoked": revoked()} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Valid(c); err != nil {
					b.Fatal(err)
				}
				if _, err := Verify(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
