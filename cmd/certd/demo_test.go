package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/certd-dev/certd/internal/lms"
)

// printedCert is one certificate as `certd demo` prints it.
type printedCert struct {
	name, downloadURL, verifyURL string
}

// parseDemoOutput reads the learners' names and the URLs printed after
// (or beside) each: /downloads/... is the PDF, /cert/... the verification
// page. Lines starting "demo:" are progress messages.
func parseDemoOutput(t *testing.T, out string) map[string]printedCert {
	t.Helper()
	certs := map[string]printedCert{}
	var current string
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "demo:") {
			continue
		}
		before, u := line, ""
		if i := strings.Index(line, "http://"); i >= 0 {
			before, u = line[:i], strings.TrimSpace(line[i:])
		}
		before = strings.TrimSpace(before)
		if before != "" && !strings.HasSuffix(before, ":") && !strings.HasPrefix(before, "error:") {
			current = before
			certs[current] = printedCert{name: current}
		}
		if u == "" {
			continue
		}
		if current == "" {
			t.Fatalf("a URL before any name: %q", line)
		}
		c := certs[current]
		switch {
		case strings.Contains(u, "/downloads/"):
			c.downloadURL = u
		case strings.Contains(u, "/cert/"):
			c.verifyURL = u
		}
		certs[current] = c
	}
	return certs
}

// uuidFromURL returns the uuid segment of /downloads/<uuid>/... or /cert/<uuid>.
func uuidFromURL(t *testing.T, raw, prefix string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("printed URL %q: %v", raw, err)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != prefix || !lms.IsUUID(parts[1]) {
		t.Fatalf("printed URL %q is not /%s/<uuid>...", raw, prefix)
	}
	return parts[1]
}

// `certd demo --once` submits the sample learners, prints a download and a
// verification URL for each, and exits 0 by itself; the files are where the
// URLs say, the signatures verify with GnuPG, and the hostile name is
// inert text in valid.html.
func TestDemoOnce(t *testing.T) {
	clearCertdEnv(t)
	dataDir := t.TempDir()
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := runCmd(ctx, "demo", "--once", "--data-dir", dataDir, "--http-addr", httpAddr, "--grpc-addr", grpcAddr)
	if r.code != 0 {
		t.Fatalf("certd demo --once: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if ctx.Err() != nil {
		t.Fatal("certd demo --once did not exit by itself")
	}
	certs := parseDemoOutput(t, r.stdout)
	www := filepath.Join(dataDir, "www")
	pub, err := os.ReadFile(filepath.Join(dataDir, "dev-signing-key.pub.asc"))
	if err != nil {
		t.Fatalf("development public key: %v", err)
	}
	if !strings.Contains(r.stderr, "DEVELOPMENT key") {
		t.Error("the demo does not warn that it signs with a development key")
	}
	gpg := newGPGKeyring(t, pub)
	for _, learner := range demoNames {
		c, ok := certs[learner.name]
		if !ok || c.downloadURL == "" || c.verifyURL == "" {
			t.Errorf("%s (%s): not printed with a URL", learner.username, learner.name)
			continue
		}
		for _, u := range []string{c.downloadURL, c.verifyURL} {
			if !strings.HasPrefix(u, "http://"+httpAddr+"/") {
				t.Errorf("%s: URL %q is not on the HTTP address %s", learner.name, u, httpAddr)
			}
		}
		if path.Base(c.downloadURL) != "Certificate.pdf" {
			t.Errorf("%s: download URL %q does not name Certificate.pdf", learner.name, c.downloadURL)
		}
		du := uuidFromURL(t, c.downloadURL, "downloads")
		vu := uuidFromURL(t, c.verifyURL, "cert")
		for _, f := range []string{
			filepath.Join(www, "downloads", du, "Certificate.pdf"),
			filepath.Join(www, "cert", vu, "Certificate.pdf.sig"),
			filepath.Join(www, "cert", vu, "valid.html"),
			filepath.Join(www, "cert", vu, "verify.html"),
		} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: %v", learner.name, err)
			}
		}
		if err := gpg.verify(www, du, vu); err != nil {
			t.Errorf("%s: %v", learner.name, err)
		}
		if learner.username == "hostile" {
			checkInertHTML(t, filepath.Join(www, "cert", vu, "valid.html"), learner.name)
		}
	}
	if len(certs) != len(demoNames) {
		t.Errorf("printed %d certificates, want %d", len(certs), len(demoNames))
	}
}

// checkInertHTML asserts the page has no script element and shows name as
// text.
func checkInertHTML(t *testing.T, file, name string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var text strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			t.Errorf("%s has a live <script> element: %s", file, b)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("%s has an event handler attribute %s=%q", file, a.Key, a.Val)
			}
		}
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !strings.Contains(text.String(), name) {
		t.Errorf("%s does not show the learner's name %q as text", file, name)
	}
}
