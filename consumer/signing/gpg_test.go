package signing

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gpgHome is a throw-away GnuPG home directory for one test.
type gpgHome struct {
	t   *testing.T
	dir string
}

// newGPG returns an empty GnuPG home. It fails the test (never skips) when
// gpg is not installed, since certd's promise is that stock gpg verifies its
// signatures.
func newGPG(t *testing.T) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg not found (%v): these tests check signatures with real GnuPG; install it with `apt-get install gnupg`", err)
	}
	dir, err := os.MkdirTemp("", "gpg") // short path: the agent socket path is limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h := &gpgHome{t: t, dir: dir}
	t.Cleanup(func() {
		if _, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command("gpgconf", "--kill", "all")
			cmd.Env = append(os.Environ(), "GNUPGHOME="+dir)
			_ = cmd.Run()
		}
		os.RemoveAll(dir)
	})
	return h
}

// run runs gpg in this home and returns stdout, stderr and the exit error.
func (h *gpgHome) run(stdin []byte, args ...string) (string, string, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gpg", append([]string{"--batch", "--no-tty", "--homedir", h.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+h.dir, "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (h *gpgHome) mustRun(stdin []byte, args ...string) string {
	h.t.Helper()
	out, stderr, err := h.run(stdin, args...)
	if err != nil {
		h.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func (h *gpgHome) importKey(armored []byte) {
	h.t.Helper()
	h.mustRun(armored, "--import")
}

// fingerprints returns the primary key fingerprints gpg lists (upper case).
func (h *gpgHome) fingerprints() []string {
	h.t.Helper()
	out := h.mustRun(nil, "--with-colons", "--fingerprint", "--list-keys")
	var fprs []string
	prevPub := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		switch {
		case f[0] == "pub":
			prevPub = true
		case f[0] == "fpr" && prevPub:
			fprs = append(fprs, f[9])
			prevPub = false
		default:
			prevPub = false
		}
	}
	return fprs
}

// verdict is what `gpg --verify` concluded, from its machine-readable status lines.
type verdict string

const (
	gpgGood  verdict = "GOODSIG"
	gpgBad   verdict = "BADSIG"
	gpgNoKey verdict = "NO_PUBKEY"
)

// verify writes data and sig to files and runs `gpg --verify file.sig file`.
func (h *gpgHome) verify(data, sig []byte) (verdict, string) {
	h.t.Helper()
	dir := h.t.TempDir()
	pdf := filepath.Join(dir, "Certificate.pdf")
	sigf := pdf + ".sig"
	if err := os.WriteFile(pdf, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(sigf, sig, 0o600); err != nil {
		h.t.Fatal(err)
	}
	out, stderr, err := h.run(nil, "--status-fd", "1", "--verify", sigf, pdf)
	var v verdict
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "[GNUPG:]" {
			continue
		}
		switch f[1] {
		case "GOODSIG":
			v = gpgGood
		case "BADSIG":
			v = gpgBad
		case "NO_PUBKEY":
			v = gpgNoKey
		}
	}
	if v == gpgGood && err != nil {
		h.t.Fatalf("gpg reported GOODSIG but exited with %v\n%s", err, stderr)
	}
	if v != gpgGood && err == nil {
		h.t.Fatalf("gpg exited 0 without GOODSIG:\n%s\n%s", out, stderr)
	}
	return v, stderr
}
