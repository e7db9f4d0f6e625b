package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// keygen makes a key pair in dir with `certd keygen` and returns the paths.
func keygen(t *testing.T, ctx context.Context, dir, name string) (priv, pub string) {
	t.Helper()
	r := runCmd(ctx, "keygen", "--name", name, "--email", "certs@example.test", "--out", dir)
	if r.code != 0 {
		t.Fatalf("certd keygen: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	priv, pub = filepath.Join(dir, "signing-key.asc"), filepath.Join(dir, "signing-key.pub.asc")
	if !strings.Contains(r.stdout, priv) || !strings.Contains(r.stdout, "fingerprint:") {
		t.Errorf("keygen does not say where the key is and its fingerprint:\n%s", r.stdout)
	}
	if st, err := os.Stat(priv); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("private key %s: %v, mode %v (want no group/other access)", priv, err, st.Mode())
	}
	return priv, pub
}

// credentialKeygen makes a credential key with certd keygen --credential and
// returns its path.
func credentialKeygen(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	r := runCmd(ctx, "keygen", "--credential", "--out", dir)
	if r.code != 0 {
		t.Fatalf("certd keygen --credential: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	path := filepath.Join(dir, "credential-key.pem")
	if !strings.Contains(r.stdout, path) || !strings.Contains(r.stdout, "z6Mk") {
		t.Errorf("keygen --credential does not say where the key is and its public key:\n%s", r.stdout)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("credential key %s: %v (want mode 0600)", path, err)
	}
	if r := runCmd(ctx, "keygen", "--credential", "--out", dir); r.code == 0 {
		t.Errorf("keygen --credential replaced an existing key")
	}
	return path
}

// glob1 returns the one file matching pattern.
func glob1(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("%s: want exactly one file, got %v (%v)", pattern, m, err)
	}
	return m[0]
}

// keygen → render → verify, as an operator previews and checks a design.
func TestKeygenRenderVerify(t *testing.T) {
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	priv, pub := keygen(t, ctx, filepath.Join(dir, "key"), "Example University Certificates")
	_, otherPub := keygen(t, ctx, filepath.Join(dir, "other"), "Someone Else")

	if r := runCmd(ctx, "keygen", "--name", "Again", "--email", "a@example.test", "--out", filepath.Join(dir, "key")); r.code == 0 {
		t.Error("keygen overwrote an existing signing key")
	}

	out := filepath.Join(dir, "one")
	r := runCmd(ctx, "render", "--out", out, "--signing-key", priv, "--name", "Jane Doe", "--course-name", "Intro to Testing")
	if r.code != 0 {
		t.Fatalf("certd render: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "rendered 1 of 1") {
		t.Errorf("render does not report what it did:\n%s", r.stdout)
	}
	pdf := glob1(t, filepath.Join(out, "downloads", "*", "Certificate.pdf"))
	sig := glob1(t, filepath.Join(out, "cert", "*", "Certificate.pdf.sig"))
	glob1(t, filepath.Join(out, "cert", "*", "valid.html"))
	glob1(t, filepath.Join(out, "cert", "*", "verify.html"))

	verify := func(pdfPath, keyPath string) runResult {
		return runCmd(ctx, "verify", "--pdf", pdfPath, "--sig", sig, "--key", keyPath)
	}
	if r := verify(pdf, pub); r.code != 0 || !strings.HasPrefix(r.stdout, "VALID") {
		t.Errorf("verify of the rendered certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pubBytes, _ := os.ReadFile(pub)
	pdfBytes, _ := os.ReadFile(pdf)
	if err := newGPGKeyring(t, pubBytes).verifyFiles(pdf, sig); err != nil {
		t.Error(err)
	}

	// One flipped byte.
	tampered := filepath.Join(dir, "tampered.pdf")
	b := append([]byte(nil), pdfBytes...)
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := verify(tampered, pub); r.code == 0 || !strings.HasPrefix(r.stdout, "TAMPERED") {
		t.Errorf("verify of a tampered PDF: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := verify(pdf, otherPub); r.code == 0 || !strings.HasPrefix(r.stdout, "WRONG KEY") {
		t.Errorf("verify with another key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(ctx, "verify", "--pdf", pdf); r.code == 0 || !strings.Contains(r.stderr, "--key") {
		t.Errorf("verify without --key: exit %d\n%s", r.code, r.stderr)
	}
}

// A batch with one bad line renders the good ones, names the bad line and
// its cause, and exits non-zero.
func TestRenderBatchWithBadLine(t *testing.T) {
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	priv, _ := keygen(t, ctx, filepath.Join(dir, "key"), "Batch Signer")
	jobs := writeFile(t, dir, "jobs.jsonl", strings.Join([]string{
		`# comment lines and blank lines are skipped`,
		`{"action": "create", "username": "ana", "course_id": "course-v1:edX+DemoX+Demo_Course", "course_name": "Demo", "name": "Ana Lima", "grade": "Pass"}`,
		``,
		`{"action": "frobnicate", "username": "bob", "course_id": "course-v1:edX+DemoX+Demo_Course", "name": "Bob"}`,
		`{"action": "create", "username": "chen", "course_id": "edX/DemoX/Demo_Course", "course_name": "Demo", "name": "陈静", "grade": "Distinction"}`,
	}, "\n")+"\n")
	out := filepath.Join(dir, "batch")
	r := runCmd(ctx, "render", "--out", out, "--signing-key", priv, "--jobs", jobs)
	if r.code == 0 {
		t.Fatalf("a batch with a bad line exited 0:\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "rendered 2 of 3") {
		t.Errorf("render does not report 2 of 3 rendered:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "job 2 failed") || !strings.Contains(r.stderr, "frobnicate") {
		t.Errorf("render does not name the failed job and its cause:\n%s", r.stderr)
	}
	pdfs, _ := filepath.Glob(filepath.Join(out, "downloads", "*", "Certificate.pdf"))
	if len(pdfs) != 2 {
		t.Errorf("%d PDFs rendered, want 2", len(pdfs))
	}
}

// `certd verify --url` follows the verification address printed on a
// certificate served by a running `certd all`.
func TestVerifyURLAgainstAll(t *testing.T) {
	clearCertdEnv(t)
	dataDir := t.TempDir()
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	all := runBackground(t, "all", "--data-dir", dataDir, "--http-addr", httpAddr, "--grpc-addr", grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl := controlClient(t, grpcAddr)
	watch, err := cl.WatchJobs(ctx, &certdv1.WatchJobsRequest{Filter: &certdv1.JobFilter{Username: "ana"}}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil { // the watch is live
		t.Fatal(err)
	}
	sub, err := cl.Submit(ctx, &certdv1.SubmitRequest{
		Action: certdv1.Action_ACTION_CREATE, Username: "ana", CourseId: "course-v1:edX+DemoX+Demo_Course",
		CourseName: "Demonstration Course", Name: "Ana Lima", Grade: "Pass",
	})
	if err != nil {
		t.Fatal(err)
	}
	var rec *certdv1.JobRecord
	for rec == nil {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch: %v\n%s", err, all.errOut.text())
		}
		if ev.Id == sub.Id && ev.State == certdv1.JobState_JOB_STATE_ANSWERED {
			rec = ev.Job
		}
	}
	if !rec.AnswerOk || !strings.HasPrefix(rec.VerifyUrl, "http://"+httpAddr+"/cert/") {
		t.Fatalf("answer: ok=%v verify_url=%q error=%q", rec.AnswerOk, rec.VerifyUrl, rec.ErrorReason)
	}

	// The printed address opens valid.html; health is up.
	for _, u := range []string{rec.VerifyUrl, rec.DownloadUrl, "http://" + httpAddr + "/healthz"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
		}
		if u == rec.VerifyUrl && !strings.Contains(string(body), "Ana Lima") {
			t.Errorf("GET %s does not show the learner's name", u)
		}
	}
	if resp, err := http.Get("http://" + httpAddr + "/cert/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the HTTP server lists the cert directory")
		}
	}

	r := runCmd(ctx, "verify", "--url", rec.VerifyUrl)
	if r.code != 0 || !strings.Contains(r.stdout, "VALID") || !strings.Contains(r.stdout, "public key published at") {
		t.Errorf("verify --url %s: exit %d\n%s%s", rec.VerifyUrl, r.code, r.stdout, r.stderr)
	}

	// The same check notices a PDF changed on the server.
	pdf := filepath.Join(dataDir, "www", "downloads", rec.DownloadUuid, "Certificate.pdf")
	b, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(pdf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCmd(ctx, "verify", "--url", rec.VerifyUrl)
	if r.code == 0 || !strings.Contains(r.stdout, "TAMPERED") {
		t.Errorf("verify --url of a changed PDF: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	if code := all.stop(t); code != 0 {
		t.Errorf("certd all exited %d after its context ended, want 0", code)
	}
}

// Stopping `certd all` (SIGTERM, systemd stop) right after it says it is
// running is a clean stop: exit 0, not an error about a cancelled context
// from a part that was still starting.
func TestAllStopRightAfterStartExitsZero(t *testing.T) {
	clearCertdEnv(t)
	all := runBackground(t, "all", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--grpc-addr", freeAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := all.errOut.waitFor(ctx, "certd is running", 1); err != nil {
		t.Fatal(err)
	}
	if code := all.stop(t); code != 0 {
		t.Errorf("certd all stopped right after start: exit %d\n%s", code, all.errOut.text())
	}
}

// render --gallery writes one certificate per sample script and a contact
// sheet; a bad han-style is refused before anything is drawn.
func TestRenderGallery(t *testing.T) {
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "gallery")
	r := runCmd(ctx, "render", "--gallery", dir, "--han-style", "ja")
	if r.code != 0 {
		t.Fatalf("certd render --gallery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"contact-sheet.pdf", "syriac.pdf", "urdu.pdf", "japanese-extension.pdf", "tibetan.pdf"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !strings.HasPrefix(string(b), "%PDF-") {
			t.Errorf("%s: %v", f, err)
		}
	}
	if r := runCmd(ctx, "render", "--gallery", dir, "--han-style", "zh"); r.code == 0 || !strings.Contains(r.stderr, "han-style") {
		t.Errorf("bad han-style accepted: exit %d\n%s", r.code, r.stderr)
	}
}
