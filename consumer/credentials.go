package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/certd-dev/certd/internal/credential"
	"github.com/certd-dev/certd/internal/statuslist"
)

// Credentials issues the Open Badges 3.0 credential beside each signed
// certificate (cert/<verify_uuid>/credential.json) and revokes it when the
// certificate is removed or replaced.
//
// Invariants:
//   - A certificate's status index is reserved once per verify uuid in the
//     status bucket (statuslist.Store.Reserve), so a redelivered job signs
//     the same credentialStatus and never takes a second index.
//   - The credential is stored before the PDF, like the other files the
//     PDF's pages point to.
//   - Bits are only ever set through statuslist.Store (compare-and-set).
type Credentials struct {
	Suite  *credential.Suite
	Signer credential.Signer
	// IssuerDID is the DID of Signer's verification method.
	IssuerDID string
	Status    *statuslist.Store
	// List is the status list id new credentials are placed in ("1");
	// ListURL where its credential is published
	// (<verify-url>/cert/status/<List>.json).
	List, ListURL string
	// Off stops issuing credentials for the whole site (the credentials
	// setting); removals still revoke the credentials issued before.
	Off bool
	// Now is the clock of proofs and revocations (default time.Now).
	Now func() time.Time
}

func (cr *Credentials) now() time.Time {
	if cr.Now != nil {
		return cr.Now()
	}
	return time.Now()
}

// credentialKey is where a certificate's credential is stored.
func credentialKey(verify string) string { return "cert/" + verify + "/credential.json" }

// StatusListKey is where the status list credential list is stored.
func StatusListKey(list string) string { return "cert/status/" + list + ".json" }

// badgeInput is what the handler knows about one certificate.
type badgeInput struct {
	verify, credURL, pdfURL, grade string
	c                              Certificate
	pdf                            []byte
}

// issue reserves the certificate's status index (keeping page, the
// verification page's input, for drawing it again when revoked) and signs
// its credential. Store errors are transient; a credential that cannot be
// built from the certificate is a permanent error.
func (cr *Credentials) issue(ctx context.Context, h *Handler, in badgeInput, page []byte) ([]byte, error) {
	e, err := cr.Status.Reserve(ctx, cr.List, in.verify, page)
	if err != nil {
		return nil, fmt.Errorf("credential status index: %w", err)
	}
	f := in.c.Fields
	kind := f.CertificateType
	if kind == "" {
		kind = "Certificate"
	}
	desc := in.c.Description
	if desc == "" {
		desc = fmt.Sprintf("%s of %s, %s %s.", kind, f.CourseName, strings.TrimSpace(f.AssociationText), f.Org)
	}
	criteria := in.c.Criteria
	if criteria == "" {
		criteria = "Completed the course " + f.CourseName + "."
	}
	b := credential.Badge{
		ID:          in.credURL,
		Issuer:      credential.Issuer{DID: cr.IssuerDID, Name: f.Org, URL: in.c.OrgURL},
		ValidFrom:   f.IssuedAt,
		Name:        kind + ": " + f.CourseName,
		LearnerName: f.Name,
		Achievement: credential.Achievement{
			ID:   h.cfg.VerifyURL + "/course/" + url.PathEscape(f.CourseID),
			Name: f.CourseName, Description: desc, Criteria: criteria,
		},
		Grade:  in.grade,
		PDFURL: in.pdfURL, PDFDigestSRI: credential.DigestSRI(in.pdf),
		Status: &credential.StatusEntry{ListURL: cr.ListURL, Index: e.Index},
	}
	if in.c.ValidFor > 0 {
		b.ValidUntil = f.IssuedAt.Add(in.c.ValidFor)
	}
	signed, err := cr.Suite.IssueOpenBadge(b, cr.Signer, cr.now())
	if err != nil {
		return nil, permanent("credential: %v", err)
	}
	return signed, nil
}

// revoke sets the status bit of the credential of the certificate with
// verify uuid v (if it has one) and records why.
func (cr *Credentials) revoke(ctx context.Context, v, reason string) error {
	_, _, err := cr.Status.RevokeCertificate(ctx, v, cr.now(), reason)
	if errors.Is(err, statuslist.ErrNoEntry) {
		return nil // issued without a credential
	}
	if err != nil {
		return fmt.Errorf("revoke credential of %s: %w", v, err)
	}
	return nil
}
