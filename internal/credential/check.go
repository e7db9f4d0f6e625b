package credential

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/certd-dev/certd/internal/statuslist"
)

// Verdict is what `certd verify` says about a credential.
type Verdict string

const (
	Valid    Verdict = "VALID"
	Revoked  Verdict = "REVOKED"
	Expired  Verdict = "EXPIRED"  // also: not valid yet
	Tampered Verdict = "TAMPERED" // proof, PDF digest or status list does not check out
	WrongKey Verdict = "WRONG KEY"
)

// Fetcher gets a document by URL (the did:web document, the status list
// credential). `certd verify` fetches over HTTPS; tests serve files.
type Fetcher func(ctx context.Context, url string) ([]byte, error)

// CheckResult is the outcome of Check, with the reason when not Valid.
type CheckResult struct {
	Verdict Verdict
	Reason  string
	Issuer  string
	// StatusIndex is the credential's status list index, -1 without one.
	StatusIndex int
}

// credentialView is the part of a credential Check reads.
type credentialView struct {
	Issuer          json.RawMessage `json:"issuer"`
	ValidFrom       string          `json:"validFrom"`
	ValidUntil      string          `json:"validUntil"`
	RelatedResource []struct {
		ID        string `json:"id"`
		DigestSRI string `json:"digestSRI"`
	} `json:"relatedResource"`
	CredentialStatus *struct {
		Type                 string `json:"type"`
		StatusPurpose        string `json:"statusPurpose"`
		StatusListIndex      string `json:"statusListIndex"`
		StatusListCredential string `json:"statusListCredential"`
	} `json:"credentialStatus"`
	Proof struct {
		VerificationMethod string `json:"verificationMethod"`
	} `json:"proof"`
}

func issuerID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	json.Unmarshal(raw, &o)
	return o.ID
}

// StatusOf returns the status list URL and index of a certd credential, for
// revoking it.
func StatusOf(signed []byte) (listURL string, index int, err error) {
	var v credentialView
	if err := json.Unmarshal(signed, &v); err != nil {
		return "", 0, fmt.Errorf("credential: %w", err)
	}
	if v.CredentialStatus == nil {
		return "", 0, errors.New("credential has no credentialStatus")
	}
	idx, err := strconv.Atoi(v.CredentialStatus.StatusListIndex)
	if err != nil || idx < 0 {
		return "", 0, fmt.Errorf("credential status index %q", v.CredentialStatus.StatusListIndex)
	}
	return v.CredentialStatus.StatusListCredential, idx, nil
}

// Check verifies a credential the way a relying party does: the key (did:key
// locally, did:web by fetching its document), the proof, the PDF digest (if
// pdf is not nil), validFrom/validUntil against now, and the status bit
// (fetching and verifying the status list credential, which must have the
// same issuer). An error means the check could not be made (a fetch
// failed); a verdict other than Valid comes with a reason.
func (s *Suite) Check(ctx context.Context, signed, pdf []byte, fetch Fetcher, now time.Time) (CheckResult, error) {
	res := CheckResult{StatusIndex: -1}
	bad := func(v Verdict, format string, a ...any) (CheckResult, error) {
		res.Verdict, res.Reason = v, fmt.Sprintf(format, a...)
		return res, nil
	}
	var v credentialView
	if err := json.Unmarshal(signed, &v); err != nil {
		return bad(Tampered, "not a credential: %v", err)
	}
	res.Issuer = issuerID(v.Issuer)
	resolve, vErr, err := s.issuerResolver(ctx, res.Issuer, fetch)
	if err != nil {
		return res, err
	}
	if vErr != "" {
		return bad(WrongKey, "%s", vErr)
	}
	vm := v.Proof.VerificationMethod
	if did, _, _ := cutFragment(vm); did != res.Issuer {
		return bad(WrongKey, "signed by %s, not a key of the issuer %s", vm, res.Issuer)
	}
	if _, err := resolve(vm); err != nil {
		return bad(WrongKey, "%v", err)
	}
	if _, err := s.Verify(signed, resolve); err != nil {
		return bad(Tampered, "%v", err)
	}
	if pdf != nil {
		if len(v.RelatedResource) == 0 || v.RelatedResource[0].DigestSRI == "" {
			return bad(Tampered, "the credential names no PDF digest")
		}
		if got := DigestSRI(pdf); got != v.RelatedResource[0].DigestSRI {
			return bad(Tampered, "the PDF's digest %s differs from the credential's %s", got, v.RelatedResource[0].DigestSRI)
		}
	}
	if st := v.CredentialStatus; st != nil {
		if st.Type != "BitstringStatusListEntry" || st.StatusPurpose != "revocation" {
			return bad(Tampered, "unsupported credentialStatus %s/%s", st.Type, st.StatusPurpose)
		}
		idx, err := strconv.Atoi(st.StatusListIndex)
		if err != nil || idx < 0 {
			return bad(Tampered, "status index %q", st.StatusListIndex)
		}
		res.StatusIndex = idx
		list, err := fetch(ctx, st.StatusListCredential)
		if err != nil {
			return res, fmt.Errorf("fetch status list %s: %w", st.StatusListCredential, err)
		}
		var lv credentialView
		if err := json.Unmarshal(list, &lv); err != nil || issuerID(lv.Issuer) != res.Issuer {
			return bad(Tampered, "status list %s is not issued by %s", st.StatusListCredential, res.Issuer)
		}
		if _, err := s.Verify(list, resolve); err != nil {
			return bad(Tampered, "status list %s: %v", st.StatusListCredential, err)
		}
		bits, err := statuslist.ParseCredential(list)
		if err != nil {
			return bad(Tampered, "status list %s: %v", st.StatusListCredential, err)
		}
		set, err := bits.Get(idx)
		if err != nil {
			return bad(Tampered, "%v", err)
		}
		if set {
			return bad(Revoked, "status bit %d of %s is set", idx, st.StatusListCredential)
		}
	}
	from, err := time.Parse(time.RFC3339, v.ValidFrom)
	if err != nil {
		return bad(Tampered, "validFrom %q", v.ValidFrom)
	}
	if now.Before(from) {
		return bad(Expired, "not valid before %s", v.ValidFrom)
	}
	if v.ValidUntil != "" {
		until, err := time.Parse(time.RFC3339, v.ValidUntil)
		if err != nil {
			return bad(Tampered, "validUntil %q", v.ValidUntil)
		}
		if now.After(until) {
			return bad(Expired, "expired on %s", v.ValidUntil)
		}
	}
	res.Verdict = Valid
	return res, nil
}

// issuerResolver returns the key resolver of an issuer DID. A DID certd
// cannot use gives a reason (second result); a failed fetch an error.
func (s *Suite) issuerResolver(ctx context.Context, did string, fetch Fetcher) (KeyResolver, string, error) {
	switch {
	case strings.HasPrefix(did, "did:key:"):
		return func(vm string) (ed25519.PublicKey, error) {
			if d, _, _ := cutFragment(vm); d != did {
				return nil, fmt.Errorf("%s is not a key of %s", vm, did)
			}
			return ResolveDIDKey(vm)
		}, "", nil
	case strings.HasPrefix(did, "did:web:"):
		u, err := DIDWebDocumentURL(did)
		if err != nil {
			return nil, err.Error(), nil
		}
		b, err := fetch(ctx, u)
		if err != nil {
			return nil, "", fmt.Errorf("fetch DID document %s: %w", u, err)
		}
		doc, err := ParseDIDDocument(b, did)
		if err != nil {
			return nil, err.Error(), nil
		}
		return doc.Resolver(), "", nil
	}
	return nil, fmt.Sprintf("issuer %q is neither did:web nor did:key", did), nil
}
