package credential

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func vectorFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "w3c-vc-di-eddsa", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorSuite(t testing.TB) *Suite {
	t.Helper()
	ex, err := os.ReadFile(filepath.Join("testdata", "w3c-vc-di-eddsa", "examples-v2.jsonld"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(map[string][]byte{"https://www.w3.org/ns/credentials/examples/v2": ex})
	if err != nil {
		t.Fatal(err)
	}
	return NewSuiteWithLoader(l)
}

// The W3C eddsa-rdfc-2022 vectors, reproduced byte for byte: both canonical
// forms, both hashes, and the signature (Ed25519 is deterministic).
func TestW3CVectorsByteForByte(t *testing.T) {
	s := vectorSuite(t)
	var kp struct{ PublicKeyMultibase, PrivateKeyMultibase string }
	if err := json.Unmarshal(vectorFile(t, "keyPair.json"), &kp); err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKeyMultibase(kp.PrivateKeyMultibase)
	if err != nil {
		t.Fatal(err)
	}
	if got := PublicKeyMultibase(priv.Public().(ed25519.PublicKey)); got != kp.PublicKeyMultibase {
		t.Fatalf("public key from the vector's private key = %s, want %s", got, kp.PublicKeyMultibase)
	}

	unsigned, err := decodeObject(vectorFile(t, "unsigned.json"))
	if err != nil {
		t.Fatal(err)
	}
	canonDoc, err := s.canon.Canonicalize(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(vectorFile(t, "canonDocDataInt.txt")); canonDoc != want {
		t.Fatalf("canonical document differs:\n got %q\nwant %q", canonDoc, want)
	}
	cfg, err := decodeObject(vectorFile(t, "proofConfigDataInt.json"))
	if err != nil {
		t.Fatal(err)
	}
	canonProof, err := s.canon.Canonicalize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(vectorFile(t, "proofCanonDataInt.txt")); canonProof != want {
		t.Fatalf("canonical proof config differs:\n got %q\nwant %q", canonProof, want)
	}
	hp, hd := sha256.Sum256([]byte(canonProof)), sha256.Sum256([]byte(canonDoc))
	if got, want := hex.EncodeToString(hd[:]), strings.TrimSpace(string(vectorFile(t, "docHashDataInt.txt"))); got != want {
		t.Fatalf("document hash %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(append(hp[:], hd[:]...)), strings.TrimSpace(string(vectorFile(t, "combinedHashDataInt.txt"))); got != want {
		t.Fatalf("combined hash %s, want %s", got, want)
	}

	// Sign through the public API with the vector's proof options.
	created, _ := time.Parse(time.RFC3339, cfg["created"].(string))
	signed, err := s.Sign(vectorFile(t, "unsigned.json"), Signer{Key: priv, VerificationMethod: cfg["verificationMethod"].(string)}, created)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Proof Proof }
	if err := json.Unmarshal(signed, &got); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(vectorFile(t, "sigBTC58DataInt.txt"))); got.Proof.ProofValue != want {
		t.Fatalf("proofValue %s, want %s", got.Proof.ProofValue, want)
	}
	// And the whole signed document equals the vector's, as JSON.
	var a, b any
	_ = json.Unmarshal(signed, &a)
	_ = json.Unmarshal(vectorFile(t, "signedDataInt.json"), &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("signed document differs:\n got %s\nwant %s", ja, jb)
	}

	// The vector's signed document verifies, and does not once changed.
	pub, _ := ParsePublicKeyMultibase(kp.PublicKeyMultibase)
	if _, err := s.Verify(vectorFile(t, "signedDataInt.json"), func(string) (ed25519.PublicKey, error) { return pub, nil }); err != nil {
		t.Fatalf("vector does not verify: %v", err)
	}
}
