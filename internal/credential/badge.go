package credential

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Badge is what certd knows about one certificate, as the input of an Open
// Badges 3.0 OpenBadgeCredential.
type Badge struct {
	// ID of the credential: an absolute IRI, e.g. the URL of its
	// credential.json or urn:uuid:<verify uuid>.
	ID     string
	Issuer Issuer
	// ValidFrom is the issue date; ValidUntil, if not zero, the expiry.
	ValidFrom, ValidUntil time.Time
	// Name of the credential as a wallet lists it.
	Name string
	// LearnerName identifies the learner (an IdentityObject of type "name";
	// learners have no DID).
	LearnerName string
	Achievement Achievement
	// Grade, if not empty, goes in the subject's result.
	Grade string
	// PDFURL and PDFDigestSRI tie the credential to the certificate's PDF
	// (relatedResource); PDFDigestSRI from DigestSRI(pdfBytes).
	PDFURL, PDFDigestSRI string
	// Status, if set, is the revocation entry.
	Status *StatusEntry
}

// Issuer is the issuing organisation: its DID, long name and web site.
type Issuer struct {
	DID, Name, URL string
}

// Achievement is the course.
type Achievement struct {
	// ID: an absolute IRI naming the course (stable across learners).
	ID                          string
	Name, Description, Criteria string
}

// StatusEntry places a credential in a Bitstring Status List.
type StatusEntry struct {
	// ListURL is the URL of the status list credential.
	ListURL string
	Index   int
}

// Field bounds: a credential stays well under a few KB of text.
const (
	maxShortField = 1024
	maxLongField  = 16 << 10
)

// DigestSRI is the Subresource Integrity digest (sha384, base64) of b.
func DigestSRI(b []byte) string {
	h := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(h[:])
}

// XSDDateTime formats t as the credentials' date-time: UTC, to the second.
func XSDDateTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// JSON shapes, in the order certd writes members.
type (
	obCredential struct {
		Context           []string       `json:"@context"`
		ID                string         `json:"id"`
		Type              []string       `json:"type"`
		Issuer            obProfile      `json:"issuer"`
		ValidFrom         string         `json:"validFrom"`
		ValidUntil        string         `json:"validUntil,omitempty"`
		Name              string         `json:"name"`
		CredentialSubject obSubject      `json:"credentialSubject"`
		RelatedResource   []obRelated    `json:"relatedResource,omitempty"`
		CredentialStatus  *obStatusEntry `json:"credentialStatus,omitempty"`
	}
	obProfile struct {
		ID   string   `json:"id"`
		Type []string `json:"type"`
		Name string   `json:"name"`
		URL  string   `json:"url,omitempty"`
	}
	obSubject struct {
		Type []string `json:"type"`
		// Name is what wallets show as "issued to"; the identifier is the
		// OB 3.0 way to name a subject without a DID.
		Name        string        `json:"name"`
		Identifier  []obIdentity  `json:"identifier"`
		Achievement obAchievement `json:"achievement"`
		Result      []obResult    `json:"result,omitempty"`
	}
	obIdentity struct {
		Type         string `json:"type"`
		IdentityHash string `json:"identityHash"`
		IdentityType string `json:"identityType"`
		Hashed       bool   `json:"hashed"`
	}
	obAchievement struct {
		ID          string     `json:"id"`
		Type        []string   `json:"type"`
		Name        string     `json:"name"`
		Description string     `json:"description"`
		Criteria    obCriteria `json:"criteria"`
	}
	obCriteria struct {
		Narrative string `json:"narrative"`
	}
	obResult struct {
		Type  []string `json:"type"`
		Value string   `json:"value"`
	}
	obRelated struct {
		ID        string `json:"id"`
		MediaType string `json:"mediaType"`
		DigestSRI string `json:"digestSRI"`
	}
	obStatusEntry struct {
		ID                   string `json:"id"`
		Type                 string `json:"type"`
		StatusPurpose        string `json:"statusPurpose"`
		StatusListIndex      string `json:"statusListIndex"`
		StatusListCredential string `json:"statusListCredential"`
	}
)

// BuildOpenBadge returns the unsigned credential JSON:
// contexts [credentials/v2, OB 3.0.3], types [VerifiableCredential,
// OpenBadgeCredential], issuer Profile, credentialSubject AchievementSubject
// with the learner's name as IdentityObject, relatedResource (PDF) and
// credentialStatus (BitstringStatusListEntry, purpose revocation).
func BuildOpenBadge(b Badge) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("open badge: %w", err)
	}
	c := obCredential{
		Context: []string{ContextCredentialsV2, ContextOB303},
		ID:      b.ID,
		Type:    []string{"VerifiableCredential", "OpenBadgeCredential"},
		Issuer: obProfile{
			ID: b.Issuer.DID, Type: []string{"Profile"}, Name: b.Issuer.Name, URL: b.Issuer.URL,
		},
		ValidFrom: XSDDateTime(b.ValidFrom),
		Name:      b.Name,
		CredentialSubject: obSubject{
			Type: []string{"AchievementSubject"},
			Name: b.LearnerName,
			Identifier: []obIdentity{{
				Type: "IdentityObject", IdentityHash: b.LearnerName, IdentityType: "name", Hashed: false,
			}},
			Achievement: obAchievement{
				ID: b.Achievement.ID, Type: []string{"Achievement"},
				Name: b.Achievement.Name, Description: b.Achievement.Description,
				Criteria: obCriteria{Narrative: b.Achievement.Criteria},
			},
		},
	}
	if !b.ValidUntil.IsZero() {
		c.ValidUntil = XSDDateTime(b.ValidUntil)
	}
	if b.Grade != "" {
		c.CredentialSubject.Result = []obResult{{Type: []string{"Result"}, Value: b.Grade}}
	}
	if b.PDFURL != "" {
		c.RelatedResource = []obRelated{{ID: b.PDFURL, MediaType: "application/pdf", DigestSRI: b.PDFDigestSRI}}
	}
	if b.Status != nil {
		idx := strconv.Itoa(b.Status.Index)
		c.CredentialStatus = &obStatusEntry{
			ID:                   b.Status.ListURL + "#" + idx,
			Type:                 "BitstringStatusListEntry",
			StatusPurpose:        "revocation",
			StatusListIndex:      idx,
			StatusListCredential: b.Status.ListURL,
		}
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("open badge: %w", err)
	}
	return out, nil
}

func (b *Badge) check() error {
	type field struct {
		name, v  string
		max      int
		required bool
	}
	for _, f := range []field{
		{"id", b.ID, maxShortField, true},
		{"issuer DID", b.Issuer.DID, maxShortField, true},
		{"issuer name", b.Issuer.Name, maxShortField, true},
		{"issuer url", b.Issuer.URL, maxShortField, false},
		{"name", b.Name, maxShortField, true},
		{"learner name", b.LearnerName, maxShortField, true},
		{"achievement id", b.Achievement.ID, maxShortField, true},
		{"achievement name", b.Achievement.Name, maxShortField, true},
		{"achievement description", b.Achievement.Description, maxLongField, true},
		{"criteria narrative", b.Achievement.Criteria, maxLongField, true},
		{"grade", b.Grade, maxShortField, false},
		{"PDF url", b.PDFURL, maxShortField, false},
	} {
		if f.required && f.v == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
		if len(f.v) > f.max {
			return fmt.Errorf("%s is %d bytes, more than %d", f.name, len(f.v), f.max)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s is not UTF-8", f.name)
		}
	}
	for _, iri := range []struct{ name, v string }{
		{"id", b.ID}, {"issuer DID", b.Issuer.DID}, {"achievement id", b.Achievement.ID},
	} {
		if !absoluteIRI(iri.v) {
			return fmt.Errorf("%s %q is not an absolute IRI", iri.name, iri.v)
		}
	}
	if b.Issuer.URL != "" && !absoluteIRI(b.Issuer.URL) {
		return fmt.Errorf("issuer url %q is not absolute", b.Issuer.URL)
	}
	if b.ValidFrom.IsZero() {
		return errors.New("validFrom is not set")
	}
	if !b.ValidUntil.IsZero() && !b.ValidUntil.After(b.ValidFrom) {
		return errors.New("validUntil is not after validFrom")
	}
	if b.PDFURL != "" {
		if !absoluteIRI(b.PDFURL) {
			return fmt.Errorf("PDF url %q is not absolute", b.PDFURL)
		}
		if len(b.PDFDigestSRI) != len("sha384-")+64 || b.PDFDigestSRI[:7] != "sha384-" {
			return fmt.Errorf("PDF digest %q is not a sha384 SRI digest", b.PDFDigestSRI)
		}
	}
	if s := b.Status; s != nil {
		if !absoluteIRI(s.ListURL) {
			return fmt.Errorf("status list url %q is not absolute", s.ListURL)
		}
		if s.Index < 0 {
			return fmt.Errorf("status index %d is negative", s.Index)
		}
	}
	return nil
}

// IssueOpenBadge builds the credential and signs it (created: the signing
// time). The issuer DID must be the DID of signer's verification method.
func (s *Suite) IssueOpenBadge(b Badge, signer Signer, created time.Time) ([]byte, error) {
	if did, _, _ := cutFragment(signer.VerificationMethod); did != b.Issuer.DID {
		return nil, fmt.Errorf("issue: verification method %s is not a key of issuer %s", signer.VerificationMethod, b.Issuer.DID)
	}
	doc, err := BuildOpenBadge(b)
	if err != nil {
		return nil, err
	}
	return s.Sign(doc, signer, created)
}

func cutFragment(vm string) (string, string, bool) {
	for i := 0; i < len(vm); i++ {
		if vm[i] == '#' {
			return vm[:i], vm[i+1:], true
		}
	}
	return vm, "", false
}
