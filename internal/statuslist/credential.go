package statuslist

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// List describes one status list credential.
type List struct {
	// URL where the list credential is published; also its id.
	URL string
	// IssuerDID: the same DID as the credentials' issuer, written as a
	// plain string.
	IssuerDID string
	// ValidFrom: when this version of the list was made.
	ValidFrom time.Time
	// TTL: how long a verifier may cache the list; must match the
	// Cache-Control max-age it is served with. Written in milliseconds.
	TTL  time.Duration
	Bits Bits
}

type listCredential struct {
	Context           []string    `json:"@context"`
	ID                string      `json:"id"`
	Type              []string    `json:"type"`
	Issuer            string      `json:"issuer"`
	ValidFrom         string      `json:"validFrom"`
	CredentialSubject listSubject `json:"credentialSubject"`
}

type listSubject struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	StatusPurpose string `json:"statusPurpose"`
	EncodedList   string `json:"encodedList"`
	TTL           int64  `json:"ttl"`
}

// ContextCredentialsV2 is the only context of a status list credential.
const ContextCredentialsV2 = "https://www.w3.org/ns/credentials/v2"

// BuildCredential returns the unsigned BitstringStatusListCredential, with
// purpose revocation.
func BuildCredential(l List) ([]byte, error) {
	if !strings.HasPrefix(l.URL, "https://") && !strings.HasPrefix(l.URL, "http://") {
		return nil, fmt.Errorf("status list: url %q is not http(s)", l.URL)
	}
	if !strings.HasPrefix(l.IssuerDID, "did:") {
		return nil, fmt.Errorf("status list: issuer %q is not a DID", l.IssuerDID)
	}
	if l.ValidFrom.IsZero() {
		return nil, errors.New("status list: validFrom not set")
	}
	if l.TTL < time.Second {
		return nil, fmt.Errorf("status list: ttl %v is under a second", l.TTL)
	}
	if len(l.Bits) < ListBytes {
		return nil, fmt.Errorf("status list: %d bits, fewer than %d", len(l.Bits)*8, MinBits)
	}
	enc, err := Encode(l.Bits)
	if err != nil {
		return nil, err
	}
	c := listCredential{
		Context:   []string{ContextCredentialsV2},
		ID:        l.URL,
		Type:      []string{"VerifiableCredential", "BitstringStatusListCredential"},
		Issuer:    l.IssuerDID,
		ValidFrom: l.ValidFrom.UTC().Truncate(time.Second).Format(time.RFC3339),
		CredentialSubject: listSubject{
			ID:            l.URL + "#list",
			Type:          "BitstringStatusList",
			StatusPurpose: "revocation",
			EncodedList:   enc,
			TTL:           l.TTL.Milliseconds(),
		},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("status list: %w", err)
	}
	return b, nil
}

// ParseCredential reads a (signed or unsigned) status list credential and
// returns its bits; it does not check the proof.
func ParseCredential(b []byte) (Bits, error) {
	var c listCredential
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("status list credential: %w", err)
	}
	if c.CredentialSubject.Type != "BitstringStatusList" {
		return nil, fmt.Errorf("status list credential: subject type %q", c.CredentialSubject.Type)
	}
	return Decode(c.CredentialSubject.EncodedList)
}
