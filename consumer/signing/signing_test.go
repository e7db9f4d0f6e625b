package signing

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakePDF returns n bytes that look like a PDF and contain everything a
// careless signer would mangle: CRLF and lone CR, trailing blanks, NULs and
// bytes that are not UTF-8.
func fakePDF(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj \r\n<< /Type /Catalog >>\rendobj   \n\x00\xff\xfe")
	for b.Len() < n {
		b.WriteByte(byte(r.Intn(256)))
	}
	b.Truncate(n - 7)
	b.WriteString("%%EOF\r\n")
	return b.Bytes()
}

func generate(t testing.TB, name string, opts ...KeyOption) (priv, pub []byte) {
	t.Helper()
	priv, pub, err := GenerateKey(name, strings.ToLower(strings.Fields(name)[0])+"@certs.example.org", opts...)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return priv, pub
}

// checkAgreement signs pdf with s and checks that gpg (with only s's public
// key imported) and Verify agree: valid; a one-byte change is BAD/ErrTampered;
// and against another key, gpg has no public key and Verify says ErrWrongKey.
func checkAgreement(t *testing.T, s *Signer, other *Signer) {
	t.Helper()
	pdf := fakePDF(60<<10, 1)
	sig, err := s.Sign(pdf)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !bytes.HasPrefix(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Fatalf("signature is not ASCII-armored:\n%s", sig)
	}

	g := newGPG(t)
	g.importKey(s.PublicKey())
	if got := g.fingerprints(); len(got) != 1 || got[0] != s.Fingerprint() {
		t.Fatalf("gpg lists fingerprints %v, Signer.Fingerprint() = %s", got, s.Fingerprint())
	}
	if !strings.HasSuffix(s.Fingerprint(), s.KeyID()) || len(s.KeyID()) != 16 {
		t.Fatalf("KeyID %q is not the low 64 bits of %s", s.KeyID(), s.Fingerprint())
	}

	// valid
	if v, stderr := g.verify(pdf, sig); v != gpgGood {
		t.Fatalf("gpg --verify of an untouched file: %s\n%s", v, stderr)
	}
	if err := Verify(pdf, sig, s.PublicKey()); err != nil {
		t.Fatalf("Verify of an untouched file: %v", err)
	}

	// tampered: one byte in the middle, and one byte appended
	for name, bad := range map[string][]byte{
		"byte flipped": func() []byte { b := bytes.Clone(pdf); b[len(b)/2] ^= 0x01; return b }(),
		"byte added":   append(bytes.Clone(pdf), '\n'),
		"CRLF to LF":   bytes.ReplaceAll(pdf, []byte("\r\n"), []byte("\n")),
	} {
		if v, stderr := g.verify(bad, sig); v != gpgBad {
			t.Fatalf("%s: gpg --verify = %q, want BADSIG\n%s", name, v, stderr)
		}
		if err := Verify(bad, sig, s.PublicKey()); !errors.Is(err, ErrTampered) {
			t.Fatalf("%s: Verify = %v, want ErrTampered", name, err)
		}
	}

	// wrong key: a verifier that only knows another key
	g2 := newGPG(t)
	g2.importKey(other.PublicKey())
	if v, stderr := g2.verify(pdf, sig); v != gpgNoKey {
		t.Fatalf("gpg --verify with another key imported = %q, want NO_PUBKEY\n%s", v, stderr)
	}
	if err := Verify(pdf, sig, other.PublicKey()); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Verify with another key = %v, want ErrWrongKey", err)
	}
}

func TestGeneratedEd25519KeyVerifiesWithGPG(t *testing.T) {
	priv, pub := generate(t, "Certd Signer")
	if !bytes.Contains(pub, []byte("BEGIN PGP PUBLIC KEY BLOCK")) || !bytes.Contains(priv, []byte("BEGIN PGP PRIVATE KEY BLOCK")) {
		t.Fatalf("GenerateKey did not return armored keys")
	}
	s, err := NewSigner(priv, nil)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	if !bytes.Equal(bytes.TrimSpace(s.PublicKey()), bytes.TrimSpace(pub)) {
		t.Errorf("Signer.PublicKey() differs from the public key GenerateKey returned")
	}
	// gpg must see a v4 EdDSA key (algorithm 22) for the interop promise to hold.
	g := newGPG(t)
	out := g.mustRun(pub, "--with-colons", "--import-options", "show-only", "--import")
	if !strings.Contains(out, "pub:-:255:22:") {
		t.Errorf("gpg does not see an Ed25519 (algo 22) primary key:\n%s", out)
	}
	otherPriv, _ := generate(t, "Other Signer")
	other, err := NewSigner(otherPriv, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkAgreement(t, s, other)
}

func TestGeneratedRSAKeyWithPassphrase(t *testing.T) {
	pass := []byte("correct horse battery staple")
	priv, _ := generate(t, "Rsa Signer", WithRSA(3072), WithPassphrase(pass))
	path := filepath.Join(t.TempDir(), "signing-key.asc")
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := LoadSigner(path, nil); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("LoadSigner without passphrase = %v, want ErrPassphrase", err)
	}
	_, err := LoadSigner(path, []byte("wrong"))
	if !errors.Is(err, ErrPassphrase) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadSigner with a wrong passphrase = %v, want ErrPassphrase naming the file", err)
	}
	s, err := LoadSigner(path, pass)
	if err != nil {
		t.Fatalf("LoadSigner: %v", err)
	}

	// The protected secret key is also usable by GnuPG 2.2 itself.
	g := newGPG(t)
	g.mustRun(priv, "--pinentry-mode", "loopback", "--passphrase", string(pass), "--import")
	sigByGPG := g.mustRun([]byte("hello"), "--pinentry-mode", "loopback", "--passphrase", string(pass), "--armor", "--detach-sign")
	if err := Verify([]byte("hello"), []byte(sigByGPG), s.PublicKey()); err != nil {
		t.Fatalf("Verify of a signature gpg made with the imported key: %v", err)
	}

	otherPriv, _ := generate(t, "Other Signer")
	other, err := NewSigner(otherPriv, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkAgreement(t, s, other)
}

// TestKeysMadeByGPG loads keys that `gpg --quick-gen-key` made and exported:
// the default RSA key (signing with the primary key) and an Ed25519 key whose
// signatures come from a signing subkey.
func TestKeysMadeByGPG(t *testing.T) {
	pass := "gpg pass phrase"
	g := newGPG(t)
	lb := []string{"--pinentry-mode", "loopback", "--passphrase", pass}
	g.mustRun(nil, append(lb, "--quick-gen-key", "GPG Default <default@certs.example.org>", "default", "default", "never")...)
	g.mustRun(nil, append(lb, "--quick-gen-key", "GPG Subkey <subkey@certs.example.org>", "ed25519", "cert", "never")...)
	fprs := g.fingerprints()
	if len(fprs) != 2 {
		t.Fatalf("gpg made %d keys, want 2", len(fprs))
	}
	g.mustRun(nil, append(lb, "--quick-add-key", fprs[1], "ed25519", "sign")...)

	export := func(uid string) []byte {
		return []byte(g.mustRun(nil, append(lb, "--armor", "--export-secret-keys", uid)...))
	}
	dir := t.TempDir()
	var signers []*Signer
	for i, uid := range []string{"default@certs.example.org", "subkey@certs.example.org"} {
		path := filepath.Join(dir, fmt.Sprintf("key%d.asc", i))
		if err := os.WriteFile(path, export(uid), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSigner(path, []byte("not it")); !errors.Is(err, ErrPassphrase) {
			t.Fatalf("%s with a wrong passphrase: %v, want ErrPassphrase", uid, err)
		}
		s, err := LoadSigner(path, []byte(pass))
		if err != nil {
			t.Fatalf("LoadSigner(%s): %v", uid, err)
		}
		if s.Fingerprint() != fprs[i] {
			t.Fatalf("Fingerprint() = %s, gpg says %s", s.Fingerprint(), fprs[i])
		}
		signers = append(signers, s)
	}
	t.Run("rsa-primary", func(t *testing.T) { checkAgreement(t, signers[0], signers[1]) })
	t.Run("ed25519-subkey", func(t *testing.T) { checkAgreement(t, signers[1], signers[0]) })
}

func TestLoadRejectsBadKeys(t *testing.T) {
	g := newGPG(t)
	g.mustRun(nil, "--pinentry-mode", "loopback", "--passphrase", "", "--faked-system-time", "20200101T000000",
		"--quick-gen-key", "Expired <expired@certs.example.org>", "ed25519", "sign,cert", "1y")
	expired := []byte(g.mustRun(nil, "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", "expired@certs.example.org"))
	if !bytes.Contains(expired, []byte("PRIVATE KEY")) {
		t.Fatalf("gpg exported no secret key:\n%s", expired)
	}
	_, pub := generate(t, "Public Only")

	for _, tc := range []struct {
		name string
		key  []byte
		want error
	}{
		{"expired key", expired, ErrKeyExpired},
		{"public key only", pub, ErrNotPrivateKey},
		{"garbage", []byte("this is not a key"), ErrMalformed},
		{"empty file", nil, ErrMalformed},
		{"armored signature instead of key", []byte("-----BEGIN PGP SIGNATURE-----\n\nwnUEABYIAB0WIQQ=\n-----END PGP SIGNATURE-----\n"), ErrMalformed},
	} {
		_, err := NewSigner(tc.key, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: NewSigner error = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := LoadSigner(filepath.Join(t.TempDir(), "missing.asc"), nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadSigner of a missing file = %v, want a not-exist error", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	priv, pub := generate(t, "Certd Signer")
	s, err := NewSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("data")
	sig, err := s.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string][2][]byte{
		"empty signature":     {nil, pub},
		"garbage signature":   {[]byte("-----BEGIN PGP SIGNATURE-----\n\n!!!!\n-----END PGP SIGNATURE-----\n"), pub},
		"key as signature":    {pub, pub},
		"garbage public key":  {sig, []byte("nope")},
		"signature as key":    {sig, sig},
		"truncated signature": {sig[:len(sig)/2], pub},
	} {
		if err := Verify(data, tc[0], tc[1]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
	// A binary (unarmored) signature is accepted too.
	if err := Verify(data, sig, []byte(priv)); err != nil {
		t.Errorf("Verify with the private key as the key: %v", err)
	}
}

// TestConcurrentSign signs from many goroutines at once (run with -race).
func TestConcurrentSign(t *testing.T) {
	priv, _ := generate(t, "Certd Signer")
	s, err := NewSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := fakePDF(4096, int64(i))
			sig, err := s.Sign(data)
			if err == nil {
				err = Verify(data, sig, s.PublicKey())
			}
			if err != nil {
				errs <- fmt.Errorf("goroutine %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func benchmarkSign(b *testing.B, opts ...KeyOption) {
	priv, _ := generate(b, "Bench Signer", opts...)
	s, err := NewSigner(priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	pdf := fakePDF(60<<10, 2)
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(pdf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign signs a 60 KB certificate with the default Ed25519 key.
func BenchmarkSign(b *testing.B) { benchmarkSign(b) }

// BenchmarkSignRSA3072 is the same with an RSA 3072 key, for comparison.
func BenchmarkSignRSA3072(b *testing.B) { benchmarkSign(b, WithRSA(3072)) }
