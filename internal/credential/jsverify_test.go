package credential

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/statuslist"
)

// jsverifyDir holds the reference verifier harness; install.sh there runs
// `npm ci` from the committed lockfile.
const jsverifyDir = "testdata/jsverify"

type jsResult struct {
	File     string `json:"file"`
	Verified bool   `json:"verified"`
	Revoked  bool   `json:"revoked"`
	Error    string `json:"error"`
}

func requireJSVerifier(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the reference verifier needs Node.js >= 18 (Debian: apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(jsverifyDir, "node_modules", "@digitalbazaar", "vc")); err != nil {
		t.Fatalf("the reference JavaScript verifier is not installed: run %s/install.sh (npm ci from the committed lockfile)", "internal/credential/"+jsverifyDir)
	}
	lock, _ := os.ReadFile(filepath.Join(jsverifyDir, "package-lock.json"))
	installed, _ := os.ReadFile(filepath.Join(jsverifyDir, "node_modules", ".certd-lock"))
	if !bytes.Equal(lock, installed) {
		t.Fatalf("the reference JavaScript verifier was installed from another lockfile: run %s/install.sh again", "internal/credential/"+jsverifyDir)
	}
}

// runJSVerify writes the files and a manifest to a temporary folder and runs
// the reference verifier on them.
func runJSVerify(t *testing.T, files map[string][]byte, documents map[string]string, credentials []string, now time.Time) (map[string]jsResult, []map[string]any) {
	t.Helper()
	var out struct {
		Contexts []map[string]any `json:"contexts"`
		Results  []jsResult       `json:"results"`
	}
	runNode(t, "verify.mjs", files, documents, nil, credentials, now, &out)
	res := map[string]jsResult{}
	for _, r := range out.Results {
		res[r.File] = r
	}
	return res, out.Contexts
}

// runNode writes the files and a manifest to a temporary folder, runs a
// harness script on it and decodes its JSON output into out.
func runNode(t *testing.T, script string, files map[string][]byte, documents, web map[string]string, credentials []string, now time.Time, out any) {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctxFiles := map[string]string{}
	for i, u := range PinnedContextURLs() {
		b, _ := PinnedContext(u)
		name := "pinned-" + string(rune('a'+i)) + ".json"
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
		ctxFiles[u] = name
	}
	manifest, _ := json.Marshal(map[string]any{
		"documents": documents, "contexts": ctxFiles, "credentials": credentials, "web": web,
		"now": now.UTC().Format(time.RFC3339),
	})
	mpath := filepath.Join(dir, "manifest.json")
	os.WriteFile(mpath, manifest, 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	abs, _ := filepath.Abs(jsverifyDir)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(abs, script), mpath)
	cmd.Dir = abs
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s output: %v\n%s", script, err, stdout.String())
	}
}

// The reference implementation verifies certd's credentials and status
// lists, and refuses a credential with one byte changed, one whose status
// bit is set, an expired one and one signed by a key the DID document no
// longer lists.
func TestReferenceVerifier(t *testing.T) {
	requireJSVerifier(t)
	s, err := NewSuite()
	if err != nil {
		t.Fatal(err)
	}
	iss := newTestIssuer(t)
	now := time.Now()

	// A retired key, already past its listing date.
	oldKey, _ := GenerateKey()
	doc, err := NewDIDDocument(iss.did, []IssuerKey{
		{Fragment: "key-2", Public: iss.priv.Public().(ed25519.PublicKey)},
		{Fragment: "key-1", Public: oldKey.Public().(ed25519.PublicKey), ListedUntil: now.Add(-time.Hour)},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	didJSON, _ := doc.JSON()
	signer := Signer{Key: iss.priv, VerificationMethod: iss.did + "#key-2"}

	listURL := "https://certs.example.org/cert/status/1.json"
	bits := statuslist.NewBits()
	bits.Set(200)
	unsignedList, err := statuslist.BuildCredential(statuslist.List{
		URL: listURL, IssuerDID: iss.did, ValidFrom: now.Add(-time.Minute), TTL: 5 * time.Minute, Bits: bits,
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Sign(unsignedList, signer, now)
	if err != nil {
		t.Fatalf("sign status list: %v", err)
	}

	issue := func(mod func(*Badge), sg Signer) []byte {
		b := testBadge(iss.did)
		b.ValidFrom = now.Add(-24 * time.Hour)
		b.ValidUntil = now.Add(365 * 24 * time.Hour)
		b.Status = &StatusEntry{ListURL: listURL, Index: 100}
		if mod != nil {
			mod(&b)
		}
		out, err := s.IssueOpenBadge(b, sg, now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	valid := issue(nil, signer)
	tampered := bytes.Replace(valid, []byte("Ångström"), []byte("Ångstrom"), 1)
	if len(tampered) != len(valid)-1 {
		t.Fatal("tampering did not change exactly one character")
	}
	revoked := issue(func(b *Badge) { b.Status.Index = 200 }, signer)
	expired := issue(func(b *Badge) {
		b.ValidFrom, b.ValidUntil = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	}, signer)
	retired := issue(nil, Signer{Key: oldKey, VerificationMethod: iss.did + "#key-1"})

	// did:key, no status entry.
	dk, _ := GenerateKey()
	dkPub := dk.Public().(ed25519.PublicKey)
	didKeyCred := func() []byte {
		b := testBadge(DIDKey(dkPub))
		b.Status = nil
		b.ValidFrom = now.Add(-time.Hour)
		b.ValidUntil = time.Time{}
		out, err := s.IssueOpenBadge(b, Signer{Key: dk, VerificationMethod: DIDKeyVerificationMethod(dkPub)}, now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}()

	files := map[string][]byte{
		"did.json": didJSON, "status-1.json": list,
		"valid.json": valid, "tampered.json": tampered, "revoked.json": revoked,
		"expired.json": expired, "retired-key.json": retired, "didkey.json": didKeyCred,
	}
	res, ctxs := runJSVerify(t, files,
		map[string]string{iss.did: "did.json", listURL: "status-1.json"},
		[]string{"valid.json", "tampered.json", "revoked.json", "expired.json", "retired-key.json", "didkey.json"}, now)

	for _, c := range ctxs {
		if c["same"] != true {
			t.Errorf("pinned context %v differs from the reference implementation's copy", c["url"])
		}
	}
	for _, name := range []string{"valid.json", "didkey.json"} {
		if r := res[name]; !r.Verified || r.Revoked {
			t.Errorf("%s: reference verifier says verified=%v revoked=%v: %s", name, r.Verified, r.Revoked, r.Error)
		}
	}
	if r := res["revoked.json"]; !r.Verified || !r.Revoked {
		t.Errorf("revoked.json: verified=%v revoked=%v (%s), want a valid proof with the status bit set", r.Verified, r.Revoked, r.Error)
	}
	for _, name := range []string{"tampered.json", "expired.json", "retired-key.json"} {
		if r := res[name]; r.Verified {
			t.Errorf("%s: the reference verifier accepted it", name)
		} else {
			t.Logf("%s refused: %s", name, firstLine(r.Error))
		}
	}
	// And certd's own verifier agrees on the proofs.
	for name, want := range map[string]bool{"valid.json": true, "tampered.json": false, "revoked.json": true} {
		_, err := s.Verify(files[name], doc.Resolver())
		if (err == nil) != want {
			t.Errorf("certd Verify(%s) = %v", name, err)
		}
	}
	if _, err := s.Verify(retired, doc.Resolver()); err == nil || !strings.Contains(err.Error(), "not an assertion method") {
		t.Errorf("certd Verify(retired key) = %v", err)
	}

	// What the Learner Credential Wallet's verifier shows, with the DID
	// document and the status list served where it fetches them.
	didURL, _ := DIDWebDocumentURL(iss.did)
	var wallet struct {
		Results []struct {
			File string `json:"file"`
			Log  []struct {
				ID    string `json:"id"`
				Valid bool   `json:"valid"`
			} `json:"log"`
			Error string `json:"error"`
		} `json:"results"`
	}
	runNode(t, "wallet.mjs", files, nil, map[string]string{didURL: "did.json", listURL: "status-1.json"},
		[]string{"valid.json", "revoked.json", "tampered.json"}, now, &wallet)
	checks := map[string]map[string]bool{}
	errs := map[string]string{}
	for _, r := range wallet.Results {
		errs[r.File] = r.Error
		checks[r.File] = map[string]bool{}
		for _, l := range r.Log {
			checks[r.File][l.ID] = l.Valid
		}
		t.Logf("wallet verifier on %s: %+v %s", r.File, r.Log, r.Error)
	}
	want := map[string]map[string]bool{
		"valid.json":   {"valid_signature": true, "revocation_status": true, "expiration": true},
		"revoked.json": {"valid_signature": true, "revocation_status": false},
	}
	// A changed credential is a fatal error for it, with no checks listed.
	if errs["tampered.json"] == "" || checks["tampered.json"]["valid_signature"] {
		t.Errorf("wallet verifier accepted the tampered credential")
	}
	for file, w := range want {
		for id, v := range w {
			got, ok := checks[file][id]
			if !ok || got != v {
				t.Errorf("wallet verifier on %s: %s = %v (present %v), want %v", file, id, got, ok, v)
			}
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
