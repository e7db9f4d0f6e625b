package credential

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DIDWeb derives a did:web identifier from the site's base URL: the host
// (a port as %3A) and then each path segment, joined with ':'. Only https
// URLs have a did:web.
//
//	https://certs.example.org/          -> did:web:certs.example.org
//	https://example.org/academy/certs/  -> did:web:example.org:academy:certs
func DIDWeb(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("did:web from %q: %w", base, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("did:web from %q: need an https URL with a host and no user, query or fragment", base)
	}
	parts := []string{strings.ReplaceAll(strings.ToLower(u.Host), ":", "%3A")}
	for _, seg := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
		if seg == "" {
			continue
		}
		if seg == "." || seg == ".." || strings.Contains(seg, ":") {
			return "", fmt.Errorf("did:web from %q: path segment %q cannot be part of a DID", base, seg)
		}
		parts = append(parts, seg)
	}
	return "did:web:" + strings.Join(parts, ":"), nil
}

// DIDWebDocumentPath is the URL path (no leading slash) where a did:web
// resolver fetches the DID document: ".well-known/did.json" for a bare host,
// "<path>/did.json" for a DID with path segments.
func DIDWebDocumentPath(did string) (string, error) {
	rest, ok := strings.CutPrefix(did, "did:web:")
	if !ok || rest == "" {
		return "", fmt.Errorf("%q is not a did:web", did)
	}
	segs := strings.Split(rest, ":")
	if len(segs) == 1 {
		return ".well-known/did.json", nil
	}
	return strings.Join(segs[1:], "/") + "/did.json", nil
}

// DIDWebDocumentURL is the https URL of a did:web's document.
func DIDWebDocumentURL(did string) (string, error) {
	p, err := DIDWebDocumentPath(did)
	if err != nil {
		return "", err
	}
	host := strings.SplitN(strings.TrimPrefix(did, "did:web:"), ":", 2)[0]
	host = strings.ReplaceAll(host, "%3A", ":")
	return "https://" + host + "/" + p, nil
}

// DIDKey is the did:key of an Ed25519 public key; its only verification
// method is DIDKey(pub)+"#"+PublicKeyMultibase(pub).
func DIDKey(pub ed25519.PublicKey) string { return "did:key:" + PublicKeyMultibase(pub) }

// DIDKeyVerificationMethod is the verification method of a did:key.
func DIDKeyVerificationMethod(pub ed25519.PublicKey) string {
	return DIDKey(pub) + "#" + PublicKeyMultibase(pub)
}

// ResolveDIDKey is a KeyResolver for did:key verification methods: the key
// is in the identifier, nothing is fetched.
func ResolveDIDKey(vm string) (ed25519.PublicKey, error) {
	did, frag, ok := strings.Cut(vm, "#")
	mb, isKey := strings.CutPrefix(did, "did:key:")
	if !ok || !isKey || frag != mb {
		return nil, fmt.Errorf("%q is not a did:key verification method", vm)
	}
	return ParsePublicKeyMultibase(mb)
}

// IssuerKey is one Ed25519 key in the issuer's DID document.
type IssuerKey struct {
	// Fragment names the key within the DID ("key-1", "key-2", ...). The
	// verification method is DID + "#" + Fragment.
	Fragment string
	Public   ed25519.PublicKey
	// ListedUntil, if set, is when a retired key leaves the document;
	// credentials it signed stop verifying then. Zero: listed always.
	ListedUntil time.Time
}

// DIDDocument is a DID document with Multikey verification methods.
type DIDDocument struct {
	Context            []string             `json:"@context"`
	ID                 string               `json:"id"`
	VerificationMethod []VerificationMethod `json:"verificationMethod"`
	AssertionMethod    []string             `json:"assertionMethod"`
}

// VerificationMethod is a Multikey entry of a DID document.
type VerificationMethod struct {
	ID                 string `json:"id"`
	Type               string `json:"type"`
	Controller         string `json:"controller"`
	PublicKeyMultibase string `json:"publicKeyMultibase"`
}

// NewDIDDocument lists the keys still listed at now (current first, as
// given), with absolute ids, each as an assertion method.
func NewDIDDocument(did string, keys []IssuerKey, now time.Time) (*DIDDocument, error) {
	if !strings.HasPrefix(did, "did:") {
		return nil, fmt.Errorf("DID document: %q is not a DID", did)
	}
	d := &DIDDocument{
		Context:            []string{ContextDIDv1, ContextMultikeyV1},
		ID:                 did,
		VerificationMethod: []VerificationMethod{},
		AssertionMethod:    []string{},
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.Fragment == "" || strings.ContainsAny(k.Fragment, "#/?: ") {
			return nil, fmt.Errorf("DID document: key fragment %q", k.Fragment)
		}
		if seen[k.Fragment] {
			return nil, fmt.Errorf("DID document: key fragment %q twice", k.Fragment)
		}
		seen[k.Fragment] = true
		if len(k.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("DID document: key %s is not Ed25519", k.Fragment)
		}
		if !k.ListedUntil.IsZero() && !now.Before(k.ListedUntil) {
			continue
		}
		id := did + "#" + k.Fragment
		d.VerificationMethod = append(d.VerificationMethod, VerificationMethod{
			ID: id, Type: "Multikey", Controller: did, PublicKeyMultibase: PublicKeyMultibase(k.Public),
		})
		d.AssertionMethod = append(d.AssertionMethod, id)
	}
	if len(d.AssertionMethod) == 0 {
		return nil, errors.New("DID document: no key listed")
	}
	return d, nil
}

// JSON is the document as published (indented).
func (d *DIDDocument) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("DID document: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseDIDDocument reads a published DID document and checks it is the
// document of did.
func ParseDIDDocument(b []byte, did string) (*DIDDocument, error) {
	if len(b) > MaxDocumentBytes {
		return nil, errors.New("DID document too large")
	}
	var d DIDDocument
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("DID document: %w", err)
	}
	if d.ID != did {
		return nil, fmt.Errorf("DID document is for %q, want %q", d.ID, did)
	}
	return &d, nil
}

// Resolver returns a KeyResolver that accepts only the document's assertion
// methods (compared as strings with the proof's verificationMethod), of type
// Multikey and controlled by the document's DID.
func (d *DIDDocument) Resolver() KeyResolver {
	return func(vm string) (ed25519.PublicKey, error) {
		if !slices.Contains(d.AssertionMethod, vm) {
			return nil, fmt.Errorf("%s is not an assertion method of %s (retired or wrong key)", vm, d.ID)
		}
		for _, m := range d.VerificationMethod {
			if m.ID != vm {
				continue
			}
			if m.Type != "Multikey" || m.Controller != d.ID {
				return nil, fmt.Errorf("%s: type %q controller %q, want Multikey controlled by %s", vm, m.Type, m.Controller, d.ID)
			}
			return ParsePublicKeyMultibase(m.PublicKeyMultibase)
		}
		return nil, fmt.Errorf("%s is not in the verification methods of %s", vm, d.ID)
	}
}
