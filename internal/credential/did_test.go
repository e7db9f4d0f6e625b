package credential

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDIDWebPathRules(t *testing.T) {
	for _, c := range []struct{ base, did, path, url string }{
		{"https://certs.example.org/", "did:web:certs.example.org", ".well-known/did.json", "https://certs.example.org/.well-known/did.json"},
		{"https://certs.example.org", "did:web:certs.example.org", ".well-known/did.json", "https://certs.example.org/.well-known/did.json"},
		{"https://example.org/academy/certs/", "did:web:example.org:academy:certs", "academy/certs/did.json", "https://example.org/academy/certs/did.json"},
		{"https://Example.org:8443/x", "did:web:example.org%3A8443:x", "x/did.json", "https://example.org:8443/x/did.json"},
	} {
		did, err := DIDWeb(c.base)
		if err != nil || did != c.did {
			t.Errorf("DIDWeb(%s) = %s, %v; want %s", c.base, did, err, c.did)
			continue
		}
		if p, _ := DIDWebDocumentPath(did); p != c.path {
			t.Errorf("document path of %s = %s, want %s", did, p, c.path)
		}
		if u, _ := DIDWebDocumentURL(did); u != c.url {
			t.Errorf("document URL of %s = %s, want %s", did, u, c.url)
		}
	}
	for _, bad := range []string{"http://example.org/", "https://user@example.org/", "https://example.org/?q=1", "ftp://x/"} {
		if _, err := DIDWeb(bad); err == nil {
			t.Errorf("DIDWeb(%s) accepted", bad)
		}
	}
}

func TestDIDDocumentShapeAndRotation(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	did := "did:web:certs.example.org"
	until := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	keys := []IssuerKey{
		{Fragment: "key-2", Public: k2.Public().(ed25519.PublicKey)},
		{Fragment: "key-1", Public: k1.Public().(ed25519.PublicKey), ListedUntil: until},
	}
	before, err := NewDIDDocument(did, keys, until.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := before.JSON()
	var m map[string]any
	json.Unmarshal(b, &m)
	ctx, _ := json.Marshal(m["@context"])
	if string(ctx) != `["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1"]` {
		t.Errorf("@context %s", ctx)
	}
	vm := m["verificationMethod"].([]any)[0].(map[string]any)
	if vm["id"] != did+"#key-2" || vm["type"] != "Multikey" || vm["controller"] != did || vm["publicKeyMultibase"].(string)[:4] != "z6Mk" {
		t.Errorf("verification method %v", vm)
	}
	if len(before.AssertionMethod) != 2 {
		t.Fatalf("before the date both keys are listed: %v", before.AssertionMethod)
	}
	// The document canonicalizes with the pinned contexts, nothing dropped.
	s, _ := NewSuite()
	dm, _ := decodeObject(b)
	if _, err := s.canon.Canonicalize(dm); err != nil {
		t.Fatalf("DID document does not expand cleanly: %v", err)
	}
	after, _ := NewDIDDocument(did, keys, until)
	if len(after.AssertionMethod) != 1 || after.AssertionMethod[0] != did+"#key-2" {
		t.Fatalf("after the date only the new key is listed: %v", after.AssertionMethod)
	}
	if _, err := after.Resolver()(did + "#key-1"); err == nil {
		t.Fatal("a retired key still resolves")
	}
	if _, err := ParseDIDDocument(b, "did:web:other.example"); err == nil {
		t.Fatal("a document for another DID was accepted")
	}
}

func TestDIDKeyRoundTrip(t *testing.T) {
	k, _ := GenerateKey()
	pub := k.Public().(ed25519.PublicKey)
	vm := DIDKeyVerificationMethod(pub)
	got, err := ResolveDIDKey(vm)
	if err != nil || !bytes.Equal(got, pub) {
		t.Fatalf("ResolveDIDKey = %x, %v", got, err)
	}
	if _, err := ResolveDIDKey(DIDKey(pub) + "#other"); err == nil {
		t.Fatal("a did:key with a foreign fragment resolved")
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "credential-key.pem")
	k, _ := GenerateKey()
	if err := WriteKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, k); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	got, err := LoadKeyFile(p)
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	// The multibase form round-trips too.
	if back, err := ParsePrivateKeyMultibase(PrivateKeyMultibase(k)); err != nil || !bytes.Equal(back, k) {
		t.Fatalf("private multibase round trip: %v", err)
	}
}

func TestBase58(t *testing.T) {
	for _, b := range [][]byte{{}, {0}, {0, 0, 1}, {0xff, 0xfe}, bytes.Repeat([]byte{0x5a}, 64)} {
		got, err := base58Decode(base58Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("round trip of %x = %x, %v", b, got, err)
		}
	}
	if base58Encode([]byte("hello world")) != "StV1DL6CwTryKyV" {
		t.Error("base58 of 'hello world'")
	}
	if _, err := base58Decode("0OIl"); err == nil {
		t.Error("invalid characters accepted")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "dev-credential-key.pem")
	k1, created, err := LoadOrCreateKey(p)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	k2, created, err := LoadOrCreateKey(p)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second call: created=%v err=%v same=%v", created, err, bytes.Equal(k1, k2))
	}
	os.WriteFile(p, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateKey(p); err == nil {
		t.Fatal("a corrupt key file was replaced instead of refused")
	}
}
