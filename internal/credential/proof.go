package credential

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Proof is a DataIntegrityProof with cryptosuite eddsa-rdfc-2022, in the
// field order certd writes it.
type Proof struct {
	Type               string `json:"type"`
	Cryptosuite        string `json:"cryptosuite"`
	Created            string `json:"created,omitempty"`
	VerificationMethod string `json:"verificationMethod"`
	ProofPurpose       string `json:"proofPurpose"`
	ProofValue         string `json:"proofValue,omitempty"`
}

const (
	ProofType   = "DataIntegrityProof"
	Cryptosuite = "eddsa-rdfc-2022"
	// PurposeAssertion is the only proof purpose certd signs with.
	PurposeAssertion = "assertionMethod"
	// MaxDocumentBytes bounds what Sign and Verify accept.
	MaxDocumentBytes = 1 << 20
)

// ErrBadSignature means the proof does not verify: the document or the
// proof changed after signing, or another key signed it.
var ErrBadSignature = errors.New("signature does not verify")

// Suite signs and verifies eddsa-rdfc-2022 Data Integrity proofs. Safe for
// concurrent use; create one per process (NewSuite) so the context cache is
// shared.
type Suite struct {
	canon *Canonicalizer

	// Canonical proof configs by their JSON: in a batch many credentials
	// share created (to the second), method and contexts.
	cfgMu    sync.Mutex
	cfgCache map[string]string
}

// maxCachedConfigs bounds the proof config cache; it is emptied when full.
const maxCachedConfigs = 64

func (s *Suite) canonicalProofConfig(cfg map[string]any) (string, error) {
	key, err := json.Marshal(cfg) // map keys sorted: a stable key
	if err != nil {
		return "", err
	}
	s.cfgMu.Lock()
	c, ok := s.cfgCache[string(key)]
	s.cfgMu.Unlock()
	if ok {
		return c, nil
	}
	c, err = s.canon.Canonicalize(cfg)
	if err != nil {
		return "", err
	}
	s.cfgMu.Lock()
	if s.cfgCache == nil || len(s.cfgCache) >= maxCachedConfigs {
		s.cfgCache = make(map[string]string)
	}
	s.cfgCache[string(key)] = c
	s.cfgMu.Unlock()
	return c, nil
}

// NewSuite returns a suite over the pinned contexts only.
func NewSuite() (*Suite, error) {
	l, err := DefaultLoader()
	if err != nil {
		return nil, err
	}
	return &Suite{canon: NewCanonicalizer(l)}, nil
}

// NewSuiteWithLoader is NewSuite with another loader (tests: extra contexts).
func NewSuiteWithLoader(l *Loader) *Suite { return &Suite{canon: NewCanonicalizer(l)} }

// Canonicalizer returns the suite's canonicalizer.
func (s *Suite) Canonicalizer() *Canonicalizer { return s.canon }

// Signer is the private half the suite needs: an Ed25519 key and the
// verification method (DID URL) that names its public half.
type Signer struct {
	Key                ed25519.PrivateKey
	VerificationMethod string
}

// Sign adds an eddsa-rdfc-2022 proof to doc (a JSON object without a
// "proof") and returns the signed JSON: doc's bytes as given, with
// `"proof":{…}` appended as the last member. created is written in UTC to
// the second. It refuses a document whose expansion drops anything
// (ErrDropped).
func (s *Suite) Sign(doc []byte, signer Signer, created time.Time) ([]byte, error) {
	if len(signer.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("sign: no Ed25519 private key")
	}
	if signer.VerificationMethod == "" {
		return nil, errors.New("sign: no verification method")
	}
	if len(doc) > MaxDocumentBytes {
		return nil, fmt.Errorf("sign: document of %d bytes exceeds %d", len(doc), MaxDocumentBytes)
	}
	m, err := decodeObject(doc)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if _, has := m["proof"]; has {
		return nil, errors.New("sign: document already has a proof")
	}
	p := Proof{
		Type:               ProofType,
		Cryptosuite:        Cryptosuite,
		Created:            created.UTC().Truncate(time.Second).Format(time.RFC3339),
		VerificationMethod: signer.VerificationMethod,
		ProofPurpose:       PurposeAssertion,
	}
	data, err := s.hashData(m, p)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	p.ProofValue = "z" + base58Encode(ed25519.Sign(signer.Key, data))
	// An indented document (as BuildOpenBadge writes) gets an indented
	// proof; a compact one a compact proof.
	indented := bytes.IndexByte(doc, '\n') >= 0
	var pj []byte
	if indented {
		pj, err = json.MarshalIndent(p, "  ", "  ")
	} else {
		pj, err = json.Marshal(p)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	trimmed := bytes.TrimRight(doc, " \t\r\n")
	out := make([]byte, 0, len(trimmed)+len(pj)+16)
	out = append(out, trimmed[:len(trimmed)-1]...)
	out = bytes.TrimRight(out, " \t\r\n")
	if len(out) > 1 { // not "{"
		out = append(out, ',')
	}
	if indented {
		out = append(out, "\n  \"proof\": "...)
	} else {
		out = append(out, `"proof":`...)
	}
	out = append(out, pj...)
	if indented {
		out = append(out, '\n')
	}
	out = append(out, '}', '\n')
	return out, nil
}

// hashData is sha256(canonical proof config) || sha256(canonical document),
// the proof config carrying the document's @context.
func (s *Suite) hashData(doc map[string]any, p Proof) ([]byte, error) {
	cfg := map[string]any{
		"type":               p.Type,
		"cryptosuite":        p.Cryptosuite,
		"verificationMethod": p.VerificationMethod,
		"proofPurpose":       p.ProofPurpose,
	}
	if p.Created != "" {
		cfg["created"] = p.Created
	}
	if ctx, ok := doc["@context"]; ok {
		cfg["@context"] = ctx
	}
	cp, err := s.canonicalProofConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("proof config: %w", err)
	}
	cd, err := s.canon.Canonicalize(doc)
	if err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	hp := sha256.Sum256([]byte(cp))
	hd := sha256.Sum256([]byte(cd))
	return append(hp[:], hd[:]...), nil
}

// KeyResolver returns the public key a verification method names, and
// refuses one the issuer does not (or no longer) list for assertions.
type KeyResolver func(verificationMethod string) (ed25519.PublicKey, error)

// Verify checks the single eddsa-rdfc-2022 proof of a signed document and
// returns the proof. A changed document or proof gives ErrBadSignature.
func (s *Suite) Verify(signed []byte, resolve KeyResolver) (*Proof, error) {
	if len(signed) > MaxDocumentBytes {
		return nil, fmt.Errorf("verify: document of %d bytes exceeds %d", len(signed), MaxDocumentBytes)
	}
	m, err := decodeObject(signed)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	raw, ok := m["proof"]
	if !ok {
		return nil, errors.New("verify: no proof")
	}
	delete(m, "proof")
	pb, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("verify: proof: %w", err)
	}
	var p Proof
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("verify: proof is not a single eddsa-rdfc-2022 DataIntegrityProof: %w", err)
	}
	if p.Type != ProofType || p.Cryptosuite != Cryptosuite {
		return nil, fmt.Errorf("verify: proof type %q/%q, want %s/%s", p.Type, p.Cryptosuite, ProofType, Cryptosuite)
	}
	if p.ProofPurpose != PurposeAssertion {
		return nil, fmt.Errorf("verify: proof purpose %q, want %s", p.ProofPurpose, PurposeAssertion)
	}
	if p.Created != "" {
		if _, err := time.Parse(time.RFC3339, p.Created); err != nil {
			return nil, fmt.Errorf("verify: proof created: %w", err)
		}
	}
	if len(p.ProofValue) < 2 || p.ProofValue[0] != 'z' {
		return nil, fmt.Errorf("verify: %w: proofValue is not base58btc multibase", ErrBadSignature)
	}
	sig, err := base58Decode(p.ProofValue[1:])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("verify: %w: proofValue is not a 64-byte signature", ErrBadSignature)
	}
	pub, err := resolve(p.VerificationMethod)
	if err != nil {
		return nil, fmt.Errorf("verify: key %s: %w", p.VerificationMethod, err)
	}
	data, err := s.hashData(m, p)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if !ed25519.Verify(pub, data, sig) {
		return nil, fmt.Errorf("verify: %w", ErrBadSignature)
	}
	return &p, nil
}

func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}
