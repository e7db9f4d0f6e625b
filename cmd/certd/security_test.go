package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/webserve"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Every spelling of a local storage directory stores into and serves from
// that one directory: file://localhost/dir, percent-encoded paths, and
// directory names with a space or #.
func TestStorageURLFormsStoreAndServeOneDirectory(t *testing.T) {
	base := t.TempDir()
	plain := filepath.Join(base, "plain")
	spaced := filepath.Join(base, "my data #1", "www dir")
	for _, d := range []string{plain, spaced} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const key = "cert/0123456789abcdef0123456789abcdef/valid.html"
	for _, c := range []struct{ raw, dir string }{
		{"file://" + plain, plain},
		{"file://localhost" + plain, plain},
		{"file:///" + strings.TrimPrefix(plain, "/") + "/", plain},
		{fileURL(spaced), spaced},
		{"file://localhost" + strings.ReplaceAll(strings.ReplaceAll(spaced, " ", "%20"), "#", "%23"), spaced},
	} {
		loc, err := parseStorage(c.raw)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if loc.dir != c.dir {
			t.Errorf("%s: serves %q, want %q", c.raw, loc.dir, c.dir)
		}
		st, err := storage.Open(context.Background(), loc.url, storage.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Errorf("%s: open store: %v", c.raw, err)
			continue
		}
		body := "<p>" + c.raw + "</p>"
		if err := st.Put(context.Background(), key, []byte(body), "text/html"); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(c.dir, filepath.FromSlash(key))); err != nil || string(b) != body {
			t.Errorf("%s: stored file: %q, %v", c.raw, b, err)
		}
		w := httptest.NewRecorder()
		webserve.New(webserve.Config{Root: loc.dir}).Handler().ServeHTTP(w, httptest.NewRequest("GET", "/"+key, nil))
		if w.Code != http.StatusOK || w.Body.String() != body {
			t.Errorf("%s: served %d %q, want the stored file", c.raw, w.Code, w.Body)
		}
	}
	// The default storage of a data dir with a space and # is a URL that
	// parses back to that directory.
	storageURL, err := localStorage(filepath.Join(base, "data #2 x", "www"))
	if err != nil {
		t.Fatal(err)
	}
	if loc, err := parseStorage(storageURL); err != nil || loc.dir != filepath.Join(base, "data #2 x", "www") {
		t.Errorf("default storage %q: %+v, %v", storageURL, loc, err)
	}
}

// Bad file URLs stop the start with a message naming --storage.
func TestBadStorageURLsRefusedAtStart(t *testing.T) {
	clearCertdEnv(t)
	url := startNATS(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key, _ := keygen(t, ctx, filepath.Join(dir, "key"), "T")
	for _, bad := range []string{
		"file://otherhost" + dir, "file:relative/dir", "file://" + dir + "#frag", "file://" + dir + "?q=1",
		"file:///%zz", "file://user:pw@localhost" + dir, "file://" + dir + "/missing", "ftp://x/y",
	} {
		r := runCmd(ctx, "consumer", "--nats-url", url, "--storage", bad, "--signing-key", key, "--download-url", "https://certs.example.org")
		if r.code == 0 || !strings.Contains(r.stderr, "storage (--storage / CERTD_STORAGE)") {
			t.Errorf("--storage %q: exit %d, stderr:\n%s", bad, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, ":pw@") {
			t.Errorf("--storage %q: the password is printed:\n%s", bad, r.stderr)
		}
	}
}

// download-url and verify-url are checked completely at start.
func TestPublicURLsChecked(t *testing.T) {
	for _, good := range []string{"https://certs.example.org", "http://127.0.0.1:8080", "https://example.org/certs/", "https://[::1]:8443/x", "https://xn--bcher-kva.example/a%20b"} {
		if err := checkPublicURL(good); err != nil {
			t.Errorf("checkPublicURL(%q) = %v, want ok", good, err)
		}
	}
	for _, bad := range []string{
		"", "https://", "http://", "https:///path", "https://:443", "//certs.example.org", "certs.example.org", "/certs",
		"ftp://certs.example.org", "javascript:alert(1)", "https:certs.example.org", "https://certs.example.org/a b",
		" https://certs.example.org", "https://certs.example.org/\"x", "https://certs.example.org/'x", "https://certs.example.org/<x>",
		"https://certs.example.org/\\x", "https://user:pass@certs.example.org", "https://certs.example.org/?a=1",
		"https://certs.example.org/?", "https://certs.example.org/#top", "https://certs.example.org:99999", "https://certs.example.org:",
		"https://certs.example.org:x", "https://cérts.example.org", "https://certs.example.org/\tx", "https://certs.example.org/%zz",
		"https://certs.example.org\n", "https://certs.example.org/`x`",
	} {
		if err := checkPublicURL(bad); err == nil {
			t.Errorf("checkPublicURL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "pass@") {
			t.Errorf("checkPublicURL(%q): %v prints the password", bad, err)
		}
	}
	// At start, naming the setting.
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--verify-url", "https://"},
		{"--download-url", "https://certs.example.org/a b"},
		{"--verify-url", `https://certs.example.org/"x`},
	} {
		r := runCmd(ctx, append([]string{"render", "--out", dir, "--name", "Jane", "--no-sign"}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("render %v: exit %d, stderr:\n%s", args, r.code, r.stderr)
		}
	}
}

// A signing key file that group or others can read is refused unless
// allowed.
func TestSigningKeyPermissions(t *testing.T) {
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	key, _ := keygen(t, ctx, filepath.Join(dir, "key"), "T")
	if err := checkKeyFile(key, false); err != nil {
		t.Errorf("mode 0600 key refused: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		if err := checkKeyFile(key, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o key: %v, want refused", mode, err)
		}
		if err := checkKeyFile(key, true); err != nil {
			t.Errorf("mode %04o key with signing-key-readable: %v", mode, err)
		}
	}
	out := filepath.Join(dir, "out")
	r := runCmd(ctx, "render", "--out", out, "--name", "Jane", "--signing-key", key)
	if r.code == 0 || !strings.Contains(r.stderr, "--signing-key") || !strings.Contains(r.stderr, "group or others") {
		t.Errorf("render with a readable key: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runCmd(ctx, "render", "--out", out, "--name", "Jane", "--signing-key", key, "--signing-key-readable=true")
	if r.code != 0 {
		t.Errorf("render with a readable key, allowed: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// Secrets never appear in output: failure paths with URLs that do not
// parse, and a whole `certd all` run at debug level that answers jobs and
// refuses and serves control calls.
func TestSecretsNeverPrintedAtDebug(t *testing.T) {
	clearCertdEnv(t)
	const (
		xqPassword = "Xq-Secret-Pw-5521"
		basicPw    = "Basic-Secret-Pw-3391"
		token      = "Control-Token-Secret-7781"
		natsPw     = "Nats-Secret-Pw-9932"
	)
	secrets := []string{xqPassword, basicPw, token, natsPw}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	natsURL := startNATS(t)
	dir := t.TempDir()
	var outputs []string
	add := func(what string, r runResult) { outputs = append(outputs, what+"\n"+r.stdout+r.stderr) }
	add("xqueue url %zz", runCmd(ctx, "bridge", "--log-level", "debug", "--nats-url", natsURL,
		"--xqueue-url", "https://certd:"+xqPassword+"%zz@xqueue.example.org", "--xqueue-user", "certd", "--xqueue-password", xqPassword))
	add("xqueue url bad port", runCmd(ctx, "bridge", "--log-level", "debug", "--nats-url", natsURL,
		"--xqueue-url", "https://certd:"+xqPassword+"@xqueue.example.org:"+xqPassword, "--xqueue-user", "certd", "--xqueue-password", xqPassword))
	add("nats url %zz", runCmd(ctx, "bridge", "--log-level", "debug", "--nats-url", "nats://certd:"+natsPw+"%zz@127.0.0.1:1"))
	add("nats list", runCmd(ctx, "control", "--log-level", "debug", "--nats-url", "nats://127.0.0.1:1,nats://certd:"+natsPw+"%zz@127.0.0.1:2"))
	add("nats unreachable", runCmd(ctx, "control", "--log-level", "debug", "--nats-url", "nats://certd:"+natsPw+"@127.0.0.1:1"))
	short := runCmd(ctx, "control", "--log-level", "debug", "--nats-url", natsURL, "--grpc-addr", "0.0.0.0:0", "--control-token", "Short-Secret")
	if short.code == 0 || !strings.Contains(short.stderr, "--control-token") || strings.Contains(short.stderr, "Short-Secret") {
		t.Errorf("control with a 12-byte token on 0.0.0.0: exit %d, stderr:\n%s", short.code, short.stderr)
	}
	add("basic auth without colon", runCmd(ctx, "bridge", "--log-level", "debug", "--nats-url", natsURL,
		"--xqueue-url", "http://127.0.0.1:1", "--xqueue-user", "certd", "--xqueue-password", xqPassword, "--xqueue-basic-auth", basicPw))

	// A whole run at debug level.
	xs := xqueuetest.NewServer(xqueuetest.WithUser("certd", xqPassword), xqueuetest.WithBasicAuth("nginx", basicPw))
	defer xs.Close()
	for i := range 3 {
		xs.Submit(fmt.Sprintf(`{"action": "create", "username": "learner%d", "course_id": "course-v1:edX+DemoX+Demo_Course", "course_name": "Demo", "name": "Learner %d", "grade": "Pass"}`, i, i))
	}
	grpcAddr := freeAddr(t)
	all := runBackground(t, "all", "--log-level", "debug", "--data-dir", filepath.Join(dir, "data"), "--poll-interval", "20ms",
		"--xqueue-url", xs.URL(), "--xqueue-user", "certd", "--xqueue-password", xqPassword, "--xqueue-basic-auth", "nginx:"+basicPw,
		"--control-token", token, "--http-addr", freeAddr(t), "--grpc-addr", grpcAddr)
	if _, err := xs.WaitCallbacks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := certdv1.NewControlClient(conn)
	if _, err := cl.GetStatus(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), &certdv1.GetStatusRequest{}); err != nil {
		t.Errorf("GetStatus with the token: %v", err)
	}
	_, err = cl.GetStatus(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token+"x"), &certdv1.GetStatusRequest{})
	if err == nil {
		t.Error("a wrong token was accepted")
	} else {
		outputs = append(outputs, "error answer\n"+err.Error())
	}
	if code := all.stop(t); code != 0 {
		t.Errorf("certd all exited %d", code)
	}
	outputs = append(outputs, "certd all\n"+all.out.text()+all.errOut.text())
	if !strings.Contains(all.errOut.text(), "level=DEBUG") {
		t.Error("certd all wrote no debug lines")
	}
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the secret %q is printed:\n%s", s, out)
			}
		}
	}
}
