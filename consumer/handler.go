// Package consumer turns jobs into certificates. Handler does the work of
// one job (render, sign, store, build the answer) and knows nothing of
// NATS; Consumer is the transport: it pulls jobs from JetStream, runs the
// handler, publishes the result and only then acks, and retries transient
// failures with backoff until a job is marked dead.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/pages"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/failure"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/statuslist"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Store is where the handler writes certificates.
type Store interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
	Delete(ctx context.Context, key string) error
}

// Renderer draws the certificate PDF.
type Renderer interface {
	Render(design string, f document.Fields) ([]byte, error)
	// HasDesign reports whether a design name is configured; it only
	// looks the name up.
	HasDesign(name string) bool
}

// Signer makes detached signatures.
type Signer interface {
	Sign(data []byte) ([]byte, error)
	Fingerprint() string
	KeyID() string
	PublicKey() []byte
}

// Catalog resolves per-course settings.
type Catalog interface {
	Resolve(courseID string) (courses.Settings, error)
}

// PermanentError is a failure caused by the job itself: it is answered with
// an error at once and never retried.
type PermanentError struct{ Reason string }

func (e *PermanentError) Error() string { return e.Reason }

func permanent(format string, args ...any) error {
	return &PermanentError{Reason: fmt.Sprintf(format, args...)}
}

// HandlerConfig wires a Handler.
type HandlerConfig struct {
	Store    Store
	Renderer Renderer
	Signer   Signer // nil: certificates are not signed and have no verification pages
	Catalog  Catalog
	// DownloadURL and VerifyURL are the public base URLs of the storage:
	// answers carry <DownloadURL>/downloads/<uuid>/<FileName>, certificates
	// print <VerifyURL>/cert/<uuid>.
	DownloadURL, VerifyURL string
	FileName               string // default Certificate.pdf
	Logger                 *slog.Logger
	// StrictDesigns makes a design named by the course (TEMPLATEFILE) or
	// the LMS (template_pdf) that is not configured a permanent error, as
	// the old agent did, instead of a fallback (see ChooseDesign).
	StrictDesigns bool
	// Credentials, if set, issues an Open Badges 3.0 credential beside
	// every signed certificate of a course that has credentials on, and
	// revokes it on remove and regen.
	Credentials *Credentials
}

// Handler does the work of one job.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger

	mu       sync.Mutex
	fallback map[string]struct{} // (course, design name) pairs whose fallback was logged
}

// maxFallbackSeen bounds the set of fallbacks already logged; when it is
// full it starts again, so a fallback is at worst logged once more.
const maxFallbackSeen = 4096

// NewHandler returns a handler.
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.FileName == "" {
		cfg.FileName = "Certificate.pdf"
	}
	cfg.DownloadURL = strings.TrimRight(cfg.DownloadURL, "/")
	cfg.VerifyURL = strings.TrimRight(cfg.VerifyURL, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{cfg: cfg, log: cfg.Logger, fallback: map[string]struct{}{}}
}

// Keys of the files of one certificate (spec section 4).
func (h *Handler) pdfKey(download string) string {
	return "downloads/" + download + "/" + h.cfg.FileName
}
func (h *Handler) sigKey(verify string) string {
	return "cert/" + verify + "/" + h.cfg.FileName + ".sig"
}
func validKey(verify string) string  { return "cert/" + verify + "/valid.html" }
func verifyKey(verify string) string { return "cert/" + verify + "/verify.html" }

// PublicKeyKey is where the signing public key is stored, next to the
// certificates, for verify.html to link to.
func PublicKeyKey(fingerprint string) string { return "cert/keys/" + fingerprint + ".asc" }

// Handle does one job and returns the result to post back. A job that
// cannot succeed gives a result with Ok false and Permanent true; a
// returned error is transient and the job should be tried again.
//
// A result for a job that drew a certificate names the design used and,
// when it is a fallback, why (Design, DesignNote); the job record keeps
// both.
func (h *Handler) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	req, err := lms.ParseRequest(job.Request)
	if err != nil {
		return errorResult(job, req, err.Error()), nil
	}
	o, err := h.handle(ctx, job, req)
	var perm *PermanentError
	if errors.As(err, &perm) {
		res := errorResult(job, req, perm.Reason)
		res.Design, res.DesignNote = o.Design, o.DesignNote
		return res, nil
	}
	if o.Result != nil {
		o.Result.Design, o.Result.DesignNote = o.Design, o.DesignNote
	}
	return o.Result, err
}

// outcome is what handle decided for one job: the result to post back and
// the design decision.
type outcome struct {
	Result             *certdv1.Result
	Design, DesignNote string
}

func errorResult(job *certdv1.Job, req lms.Request, reason string) *certdv1.Result {
	return &certdv1.Result{
		JobId: job.Id, Generation: job.Generation, Ok: false,
		Answer: lms.ErrorAnswer(req.Username, req.CourseID, reason), ErrorReason: reason,
	}
}

func (h *Handler) handle(ctx context.Context, job *certdv1.Job, req lms.Request) (outcome, error) {
	if !lms.IsUUID(job.DownloadUuid) || !lms.IsUUID(job.VerifyUuid) {
		return outcome{}, permanent("job %s has no valid uuids", job.Id)
	}
	switch req.Action {
	case "remove":
		if err := h.remove(ctx, req, "removed"); err != nil {
			return outcome{}, err
		}
		return outcome{Result: &certdv1.Result{JobId: job.Id, Generation: job.Generation, Ok: true,
			Answer: lms.RemoveAnswer(req.Username, req.CourseID)}}, nil
	case "regen", "create":
		// Resolve before deleting anything: a regen that cannot draw
		// leaves the old certificate in place.
		c, err := h.Resolve(job, req)
		if err != nil {
			return outcome{}, err
		}
		o := outcome{Design: c.Design, DesignNote: c.DesignNote}
		if req.Action == "regen" {
			if err := h.remove(ctx, req, "replaced by a new certificate"); err != nil {
				return o, err
			}
		}
		o.Result, err = h.create(ctx, job, req, c)
		return o, err
	}
	return outcome{}, permanent("unknown action %q", req.Action)
}

// remove revokes the credential of the certificate the request names (the
// bit is set before anything is deleted, so a credential never outlives
// its files unrevoked) and deletes its files.
func (h *Handler) remove(ctx context.Context, req lms.Request, reason string) error {
	var keys []string
	if d := req.DeleteDownloadUUID; d != "" {
		keys = append(keys, h.pdfKey(d))
	}
	if v := req.DeleteVerifyUUID; v != "" {
		if cr := h.cfg.Credentials; cr != nil && lms.IsUUID(v) {
			if err := cr.revoke(ctx, v, reason); err != nil {
				return err
			}
		}
		keys = append(keys, h.sigKey(v), credentialKey(v), validKey(v), verifyKey(v))
	}
	for _, k := range keys {
		if err := h.cfg.Store.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return nil
}

// Certificate is what a job resolves to before drawing: the document
// fields, the design and whether it is signed.
type Certificate struct {
	Fields document.Fields
	// Design is the design to draw with (see ChooseDesign); DesignNote
	// says why, when it is a fallback.
	Design, DesignNote string
	Verify             bool
	Grade              string
	// Credential: an Open Badges credential goes with it (Verify, the
	// course's CREDENTIAL and the site's credentials setting all on).
	Credential bool
	// Course settings the credential uses.
	OrgURL, Description, Criteria string
	ValidFor                      time.Duration
}

// Resolve turns a request into the certificate to draw, applying the
// course's settings. Errors are permanent.
func (h *Handler) Resolve(job *certdv1.Job, req lms.Request) (Certificate, error) {
	s, err := h.cfg.Catalog.Resolve(req.CourseID)
	if err != nil {
		return Certificate{}, permanent("course %q: %v", clip(req.CourseID), err)
	}
	accepted := time.Now().UTC()
	if job.AcceptedAt != nil {
		accepted = job.AcceptedAt.AsTime().UTC()
	}
	// ROLLING dates are the day the job was accepted, not the day of an
	// attempt, so a redelivered job draws the same certificate.
	issued, err := courses.IssueDate(req.IssuedDate, s, accepted)
	if err != nil {
		return Certificate{}, permanent("issued_date: %v", err)
	}
	id, _ := courses.ParseCourseID(req.CourseID)
	courseName := s.LongCourse
	if courseName == "" {
		courseName = req.CourseName
	}
	if courseName == "" {
		courseName = id.Course
	}
	design, note, err := h.ChooseDesign(req.CourseID, req.TemplatePDF, s)
	if err != nil {
		return Certificate{}, err
	}
	if note != "" {
		h.logFallback(job.Id, req.CourseID, note, design, req.TemplatePDF, s)
	}
	verify := s.Verify && h.cfg.Signer != nil
	f := document.Fields{
		Name: req.Name, Designation: req.Designation,
		CourseID: req.CourseID, CourseName: courseName,
		Org: s.LongOrg, OrgShort: id.Org,
		IssuedDate: courses.FormatDate(issued), IssuedAt: issued,
		Grade: req.Grade, GradeText: s.GradeText(req.Grade),
		CertificateType: s.CertsAreCalled, AssociationText: s.AssociationText,
		CertificateID: job.VerifyUuid, Verified: req.Verified(), HanStyle: s.HanStyle,
	}
	if f.Org == "" {
		f.Org = id.Org
	}
	if verify {
		f.VerifyURL = h.cfg.VerifyURL + "/cert/" + job.VerifyUuid
	}
	cr := h.cfg.Credentials
	return Certificate{Fields: f, Design: design, DesignNote: note, Verify: verify, Grade: req.Grade,
		Credential: verify && s.Credential && cr != nil && !cr.Off,
		OrgURL:     s.OrgURL, Description: s.Description, Criteria: s.Criteria, ValidFor: s.ValidFor,
	}, nil
}

// ChooseDesign picks the design a job is drawn with, in this order:
//
//  1. the course's TEMPLATEFILE (cert-data.yml), if it is a configured
//     design: the course overrides the LMS's name, as in the old agent;
//  2. the job's template_pdf, if configured;
//  3. the course's VERSION, if configured;
//  4. the built-in default design.
//
// The LMS puts a template_pdf on every job whether or not the site has
// it, so a name that is not configured falls back; note then says which
// names were passed over. With StrictDesigns, the first name the course or
// the LMS gives (TEMPLATEFILE, else template_pdf) must be configured, and
// otherwise the job fails permanently. Names are only looked up.
func (h *Handler) ChooseDesign(courseID, templatePDF string, s courses.Settings) (design, note string, err error) {
	var missed []string
	for _, c := range []struct{ what, name string }{
		{"TEMPLATEFILE", s.TemplateFile}, {"template_pdf", templatePDF}, {"VERSION", s.Version},
	} {
		name := strings.TrimSpace(c.name)
		if name == "" {
			continue
		}
		if h.cfg.Renderer.HasDesign(name) {
			design = name
			break
		}
		if h.cfg.StrictDesigns && len(missed) == 0 && c.what != "VERSION" {
			return "", "", permanent("%v: %s %s of course %s is not configured (strict-designs is on)",
				document.ErrUnknownDesign, c.what, quote(name), quote(courseID))
		}
		missed = append(missed, fmt.Sprintf("%s %s", c.what, quote(name)))
	}
	if design == "" {
		design = document.DefaultDesign
	}
	if len(missed) > 0 {
		verb := "is not a configured design"
		if len(missed) > 1 {
			verb = "are not configured designs"
		}
		note = fmt.Sprintf("%s %s; using %q", strings.Join(missed, " and "), verb, design)
	}
	return design, note, nil
}

// logFallback logs a design fallback once per course and design name
// (bounded: see maxFallbackSeen).
func (h *Handler) logFallback(jobID, courseID, note, design, asked string, s courses.Settings) {
	key := courseID + "\x00" + s.TemplateFile + "\x00" + asked + "\x00" + s.Version
	h.mu.Lock()
	_, seen := h.fallback[key]
	if !seen {
		if len(h.fallback) >= maxFallbackSeen {
			clear(h.fallback)
		}
		h.fallback[key] = struct{}{}
	}
	h.mu.Unlock()
	if !seen {
		h.log.Info("certificate design not configured; using a fallback (logged once per course and design)",
			"job", jobID, "course_id", courseID, "design", design, "note", note)
	}
}

func quote(s string) string {
	return fmt.Sprintf("%q", clip(s))
}

func (h *Handler) create(ctx context.Context, job *certdv1.Job, req lms.Request, c Certificate) (*certdv1.Result, error) {
	pdf, err := h.cfg.Renderer.Render(c.Design, c.Fields)
	if err != nil && Classify(err) == failure.Invalid {
		return nil, permanent("%v", err)
	} else if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	downloadURL := h.cfg.DownloadURL + "/" + h.pdfKey(job.DownloadUuid)
	type file struct {
		key, contentType string
		data             []byte
	}
	var files []file
	if c.Verify {
		sig, err := h.cfg.Signer.Sign(pdf)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		var verify []byte
		pc := pages.Certificate{
			Name: c.Fields.Name, Designation: c.Fields.Designation,
			CourseName: c.Fields.CourseName, CourseID: c.Fields.CourseID, Org: c.Fields.Org,
			IssuedDate: c.Fields.IssuedDate, CertificateType: c.Fields.CertificateType,
			CertificateID: job.VerifyUuid, Grade: c.Grade, Verified: c.Fields.Verified,
			DownloadURL:    downloadURL,
			SignatureURL:   h.cfg.VerifyURL + "/" + h.sigKey(job.VerifyUuid),
			PublicKeyURL:   h.cfg.VerifyURL + "/" + PublicKeyKey(h.cfg.Signer.Fingerprint()),
			KeyFingerprint: h.cfg.Signer.Fingerprint(), KeyID: h.cfg.Signer.KeyID(),
			VerifyURL: h.cfg.VerifyURL + "/" + verifyKey(job.VerifyUuid),
			ValidURL:  h.cfg.VerifyURL + "/" + validKey(job.VerifyUuid),
			IssuedAt:  c.Fields.IssuedAt,
		}
		var cred []byte
		if c.Credential {
			cr := h.cfg.Credentials
			pc.CredentialURL = h.cfg.VerifyURL + "/" + credentialKey(job.VerifyUuid)
			pc.IssuerDID = cr.IssuerDID
			page, err := json.Marshal(pc)
			if err != nil {
				return nil, fmt.Errorf("page input: %w", err)
			}
			var e statuslist.Entry
			cred, e, err = cr.issue(ctx, h, badgeInput{
				verify: job.VerifyUuid, credURL: pc.CredentialURL, pdfURL: downloadURL, grade: c.Grade, c: c, pdf: pdf,
			}, page)
			if err != nil {
				return nil, err
			}
			if e.RevokedAt != nil { // drawn again after a Revoke: stays revoked
				pc.Revoked = &pages.Revocation{At: *e.RevokedAt, Reason: e.Reason}
			}
		}
		valid, err := pages.Valid(pc)
		if err == nil {
			verify, err = pages.Verify(pc)
		}
		if err != nil && Classify(err) == failure.Invalid {
			return nil, permanent("verification page: %v", err)
		} else if err != nil {
			return nil, fmt.Errorf("verification pages: %w", err)
		}
		files = append(files, file{h.sigKey(job.VerifyUuid), "application/pgp-signature", sig})
		if cred != nil {
			files = append(files, file{credentialKey(job.VerifyUuid), "application/json", cred})
		}
		files = append(files,
			file{validKey(job.VerifyUuid), "text/html; charset=utf-8", valid},
			file{verifyKey(job.VerifyUuid), "text/html; charset=utf-8", verify})
	}
	// The PDF goes last: once it exists, everything it points to does too.
	files = append(files, file{h.pdfKey(job.DownloadUuid), "application/pdf", pdf})
	// One PutAll per certificate: stores from storage.Open write the files
	// together and share fsyncs with concurrent jobs; it keeps the order.
	all := make([]storage.File, len(files))
	for i, f := range files {
		all[i] = storage.File{Key: f.key, ContentType: f.contentType, Data: f.data}
	}
	if err := storage.PutAll(ctx, h.cfg.Store, all); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	res := &certdv1.Result{
		JobId: job.Id, Generation: job.Generation, Ok: true,
		Answer:      lms.SuccessAnswer(req.Action, job.DownloadUuid, job.VerifyUuid, req.Username, req.CourseID, downloadURL),
		DownloadUrl: downloadURL,
	}
	if c.Verify {
		res.VerifyUrl = c.Fields.VerifyURL
	}
	return res, nil
}

func clip(s string) string {
	r := []rune(s)
	if len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return s
}

// run runs a job with h, and with the design decision when h reports one
// (the real Handler does; test doubles need not).
func run(ctx context.Context, h JobHandler, job *certdv1.Job) (outcome, error) {
	if r, ok := h.(interface {
		Run(context.Context, *certdv1.Job) (outcome, error)
	}); ok {
		return r.Run(ctx, job)
	}
	res, err := h.Handle(ctx, job)
	return outcome{Result: res}, err
}
