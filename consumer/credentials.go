package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/certd-dev/certd/consumer/pages"
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
	// VerifyURL is the base URL the status lists are published under:
	// list n at <VerifyURL>/cert/status/<n>.json (StatusListKey).
	VerifyURL string
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

// ListURL is the published URL of status list list.
func (cr *Credentials) ListURL(list string) string {
	return strings.TrimRight(cr.VerifyURL, "/") + "/" + StatusListKey(list)
}

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
func (cr *Credentials) issue(ctx context.Context, h *Handler, in badgeInput, page []byte) ([]byte, statuslist.Entry, error) {
	e, err := cr.Status.Reserve(ctx, in.verify, page)
	if err != nil {
		return nil, e, fmt.Errorf("credential status index: %w", err)
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
		Status: &credential.StatusEntry{ListURL: cr.ListURL(e.List), Index: e.Index},
	}
	if in.c.ValidFor > 0 {
		b.ValidUntil = f.IssuedAt.Add(in.c.ValidFor)
	}
	signed, err := cr.Suite.IssueOpenBadge(b, cr.Signer, cr.now())
	if err != nil {
		return nil, e, permanent("credential: %v", err)
	}
	return signed, e, nil
}

// revoke sets the status bit of the credential of the certificate with
// verify uuid v (if it has one), records why, and forgets the page input
// (the certificate is being deleted and is never drawn again).
func (cr *Credentials) revoke(ctx context.Context, v, reason string) error {
	_, _, err := cr.Status.RevokeCertificate(ctx, v, cr.now(), reason)
	if errors.Is(err, statuslist.ErrNoEntry) {
		return nil // issued without a credential
	}
	if err != nil {
		return fmt.Errorf("revoke credential of %s: %w", v, err)
	}
	if err := cr.Status.ForgetPage(ctx, v); err != nil {
		return fmt.Errorf("revoke credential of %s: %w", v, err)
	}
	return nil
}

// Revoker revokes a certificate's credential without deleting anything
// (the control service's Revoke): it sets the status bit, records the date
// and reason, and draws valid.html and verify.html again, as revoked, from
// the page input kept when the credential was issued.
type Revoker struct {
	Status *statuslist.Store
	// Store receives the redrawn pages.
	Store interface {
		Put(ctx context.Context, key string, data []byte, contentType string) error
	}
	Log *slog.Logger
	Now func() time.Time
}

// Revocation is the outcome of Revoker.Revoke.
type Revocation struct {
	At     time.Time
	Reason string
	// Already: the certificate was revoked before (At and Reason are the
	// first revocation's).
	Already bool
}

// ErrNotRevocable: the certificate has no credential certd can revoke.
var ErrNotRevocable = statuslist.ErrNoEntry

// Revoke revokes the certificate with verify uuid v. Calling it again
// redraws the pages and keeps the first date and reason.
func (r *Revoker) Revoke(ctx context.Context, v, reason string) (Revocation, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	e, changed, err := r.Status.RevokeCertificate(ctx, v, now(), reason)
	if err != nil {
		return Revocation{}, err
	}
	out := Revocation{At: *e.RevokedAt, Reason: e.Reason, Already: !changed}
	if len(e.Page) == 0 {
		if r.Log != nil {
			r.Log.Warn("revoked; the verification page was not kept, so it still says valid (the credential's status says revoked)", "verify_uuid", v)
		}
		return out, nil
	}
	var pc pages.Certificate
	if err := json.Unmarshal(e.Page, &pc); err != nil {
		return out, fmt.Errorf("page input of %s: %w", v, err)
	}
	pc.Revoked = &pages.Revocation{At: out.At, Reason: out.Reason}
	valid, err := pages.Valid(pc)
	if err != nil {
		return out, fmt.Errorf("redraw valid.html of %s: %w", v, err)
	}
	verify, err := pages.Verify(pc)
	if err != nil {
		return out, fmt.Errorf("redraw verify.html of %s: %w", v, err)
	}
	for _, f := range []struct {
		key  string
		data []byte
	}{{verifyKey(v), verify}, {validKey(v), valid}} {
		if err := r.Store.Put(ctx, f.key, f.data, "text/html; charset=utf-8"); err != nil {
			return out, fmt.Errorf("store %s: %w", f.key, err)
		}
	}
	return out, nil
}
