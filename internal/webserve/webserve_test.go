package webserve_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/certd-dev/certd/internal/webserve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	dl     = "0123456789abcdef0123456789abcdef"
	vf     = "fedcba9876543210fedcba9876543210"
	secret = "-----BEGIN PGP PRIVATE KEY BLOCK----- top secret"
)

// store lays out a data dir as certd all does: the development key next to
// the storage directory www/, with certificates, and traps in it.
func store(t *testing.T) (root, passwd string) {
	t.Helper()
	data := t.TempDir()
	root = filepath.Join(data, "www")
	files := map[string]string{
		"downloads/" + dl + "/Certificate.pdf":  "%PDF-1.7 pdf",
		"cert/" + vf + "/valid.html":            "<html>valid</html>",
		"cert/" + vf + "/verify.html":           "<html>verify</html>",
		"cert/" + vf + "/Certificate.pdf.sig":   "-----BEGIN PGP SIGNATURE-----",
		"cert/keys/ABCDEF.asc":                  "-----BEGIN PGP PUBLIC KEY BLOCK-----",
		"cert/" + vf + "/info.json":             `{"ok":true}`,
		"cert/" + vf + "/.certd-tmp-1234.html":  "partial",
		"cert/.hidden/valid.html":               "hidden",
		"cert/" + vf + "/notes.txt":             "text",
		"downloads/" + dl + "/Certificate.html": "<script>alert(1)</script>",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := filepath.Join(data, "dev-signing-key.asc")
	if err := os.WriteFile(key, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	passwd = filepath.Join(data, "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/bash"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"cert/" + vf + "/key.asc":     key,                                          // absolute, out of the store
		"cert/" + vf + "/passwd.html": "/etc/passwd",                                // absolute system file
		"cert/" + vf + "/rel.asc":     "../../../dev-signing-key.asc",               // relative, out of the store
		"cert/" + vf + "/inside.pdf":  "../../downloads/" + dl + "/Certificate.pdf", // inside the store
		"cert/linkdir":                filepath.Join(root, "downloads", dl),         // a directory link
		"downloads/up":                data,                                         // a directory link out
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return root, passwd
}

// get follows redirects the way a browser would, with the raw path given.
func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	for range 5 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://certs.example"+target, nil)
		h.ServeHTTP(w, r)
		if w.Code < 300 || w.Code >= 400 {
			return w
		}
		target = w.Header().Get("Location")
	}
	t.Fatalf("too many redirects for %s", target)
	return nil
}

func TestServesOnlyPlainStoredFiles(t *testing.T) {
	root, _ := store(t)
	h := webserve.New(webserve.Config{Root: root}).Handler()
	for target, want := range map[string]struct{ ct, body string }{
		"/downloads/" + dl + "/Certificate.pdf":  {"application/pdf", "%PDF-1.7 pdf"},
		"/cert/" + vf:                            {"text/html; charset=utf-8", "<html>valid</html>"},
		"/cert/" + vf + "/":                      {"text/html; charset=utf-8", "<html>valid</html>"},
		"/cert/" + vf + "/verify.html":           {"text/html; charset=utf-8", "<html>verify</html>"},
		"/cert/" + vf + "/Certificate.pdf.sig":   {"application/pgp-signature", "-----BEGIN PGP SIGNATURE-----"},
		"/cert/keys/ABCDEF.asc":                  {"application/pgp-keys", "-----BEGIN PGP PUBLIC KEY BLOCK-----"},
		"/cert/" + vf + "/info.json":             {"application/json", `{"ok":true}`},
		"/downloads/" + dl + "/Certificate.html": {"text/html; charset=utf-8", "<script>alert(1)</script>"},
	} {
		w := get(t, h, target)
		if w.Code != http.StatusOK || w.Body.String() != want.body || w.Header().Get("Content-Type") != want.ct {
			t.Errorf("%s: %d %q %q, want 200 %q %q", target, w.Code, w.Header().Get("Content-Type"), w.Body, want.ct, want.body)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", target)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if strings.HasPrefix(want.ct, "text/html") != (csp != "") || (csp != "" && !strings.Contains(csp, "default-src 'none'")) {
			t.Errorf("%s: Content-Security-Policy %q", target, csp)
		}
	}
}

func TestRefusesLinksHiddenFilesAndTricks(t *testing.T) {
	root, _ := store(t)
	h := webserve.New(webserve.Config{Root: root}).Handler()
	for _, target := range []string{
		"/cert/" + vf + "/key.asc", "/cert/" + vf + "/passwd.html", "/cert/" + vf + "/rel.asc",
		"/cert/" + vf + "/inside.pdf", "/cert/linkdir/Certificate.pdf", "/downloads/up/dev-signing-key.asc",
		"/downloads/up/passwd", "/downloads/up/www/downloads/" + dl + "/Certificate.pdf",
		"/cert/" + vf + "/.certd-tmp-1234.html", "/cert/.hidden/valid.html", "/cert/.hidden",
		"/cert/../dev-signing-key.asc", "/cert/%2e%2e/dev-signing-key.asc", "/downloads/..%2f..%2fdev-signing-key.asc",
		"/cert/" + vf + "/..%2f..%2f..%2fdev-signing-key.asc", "/downloads/" + dl + "/Certificate.pdf%00.html",
		"/cert/..\\..\\dev-signing-key.asc", "/dev-signing-key.asc", "/passwd", "/etc/passwd", "/../../etc/passwd",
		"/downloads/", "/downloads/" + dl + "/", "/cert/", "/cert/keys/", "/cert/" + vf + "/notes.txt",
	} {
		w := get(t, h, target)
		body := w.Body.String()
		if w.Code == http.StatusOK || strings.Contains(body, "secret") || strings.Contains(body, "root:") ||
			strings.Contains(body, "partial") || strings.Contains(body, "hidden") || strings.Contains(body, dl+"/") {
			t.Errorf("%s: %d %q, want not found", target, w.Code, body)
		}
	}
}

// TestIdleConnectionsAreClosed keeps a connection open after a request:
// the server closes it once it has been idle for IdleTimeout.
func TestIdleConnectionsAreClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := webserve.New(webserve.Config{IdleTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" || resp.Close {
		t.Fatalf("healthz: %d %q close=%v", resp.StatusCode, b, resp.Close)
	}
	// Nothing more is sent: the next read ends when the server closes the
	// idle connection (not at the 30 s deadline).
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle connection was not closed")
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read after idle: %v, want EOF", err)
	}
}

// The issuer's DID document is served at exactly its two did:web places,
// nothing else under .well-known; revocation lists carry their max-age.
func TestServesDIDDocumentAndStatusListMaxAge(t *testing.T) {
	root, _ := store(t)
	for name, body := range map[string]string{
		".well-known/did.json":   `{"id":"did:web:certs.example"}`,
		".well-known/other.json": `{"other":true}`,
		"did.json":               `{"id":"did:web:certs.example:x"}`,
		"cert/status/1.json":     `{"list":1}`,
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := webserve.New(webserve.Config{Root: root, StatusMaxAge: 5 * time.Minute}).Handler()
	for target, body := range map[string]string{
		"/.well-known/did.json": `{"id":"did:web:certs.example"}`,
		"/did.json":             `{"id":"did:web:certs.example:x"}`,
		"/cert/status/1.json":   `{"list":1}`,
	} {
		w := get(t, h, target)
		if w.Code != http.StatusOK || w.Body.String() != body || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %q", target, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if cc := w.Header().Get("Cache-Control"); (target == "/cert/status/1.json") != (cc == "max-age=300") {
			t.Errorf("%s: Cache-Control %q", target, cc)
		}
	}
	for _, target := range []string{"/.well-known/other.json", "/.well-known/", "/cert/did.json", "/x/did.json"} {
		if w := get(t, h, target); w.Code == http.StatusOK {
			t.Errorf("%s: served %q, want not found", target, w.Body)
		}
	}
}
