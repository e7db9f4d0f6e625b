// Package consumer turns jobs into certificates. Handler does the work of
// one job (render, sign, store, build the answer) and knows nothing of
// NATS; Consumer is the transport: it pulls jobs from JetStream, runs the
// handler, publishes the result and only then acks, and retries transient
// failures with backoff until a job is marked dead.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/pages"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/pipeline"
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
}

// Handler does the work of one job.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger
}

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
	return &Handler{cfg: cfg, log: cfg.Logger}
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
func (h *Handler) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	req, err := pipeline.ParseRequest(job.Request)
	if err != nil {
		return errorResult(job, req, err.Error()), nil
	}
	res, err := h.handle(ctx, job, req)
	var perm *PermanentError
	if errors.As(err, &perm) {
		return errorResult(job, req, perm.Reason), nil
	}
	return res, err
}

func errorResult(job *certdv1.Job, req pipeline.Request, reason string) *certdv1.Result {
	return &certdv1.Result{
		JobId: job.Id, Generation: job.Generation, Ok: false, Permanent: true,
		Answer: pipeline.ErrorAnswer(req.Username, req.CourseID, reason), ErrorReason: reason,
	}
}

func (h *Handler) handle(ctx context.Context, job *certdv1.Job, req pipeline.Request) (*certdv1.Result, error) {
	if !pipeline.IsUUID(job.DownloadUuid) || !pipeline.IsUUID(job.VerifyUuid) {
		return nil, permanent("job %s has no valid uuids", job.Id)
	}
	switch req.Action {
	case "remove":
		if err := h.remove(ctx, req); err != nil {
			return nil, err
		}
		return &certdv1.Result{JobId: job.Id, Generation: job.Generation, Ok: true,
			Answer: pipeline.RemoveAnswer(req.Username, req.CourseID)}, nil
	case "regen":
		if err := h.remove(ctx, req); err != nil {
			return nil, err
		}
		return h.create(ctx, job, req)
	case "create":
		return h.create(ctx, job, req)
	}
	return nil, permanent("unknown action %q", req.Action)
}

// remove deletes the files of the certificate the request names.
func (h *Handler) remove(ctx context.Context, req pipeline.Request) error {
	var keys []string
	if d := req.DeleteDownloadUUID; d != "" {
		keys = append(keys, h.pdfKey(d))
	}
	if v := req.DeleteVerifyUUID; v != "" {
		keys = append(keys, h.sigKey(v), validKey(v), verifyKey(v))
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
	Design string
	Verify bool
	Grade  string
}

// Resolve turns a request into the certificate to draw, applying the
// course's settings. Errors are permanent.
func (h *Handler) Resolve(job *certdv1.Job, req pipeline.Request) (Certificate, error) {
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
	design := req.TemplatePDF
	if design == "" {
		design = s.Template
	}
	verify := s.Verify && h.cfg.Signer != nil
	f := document.Fields{
		Name: req.Name, Designation: req.Designation,
		CourseID: req.CourseID, CourseName: courseName,
		Org: s.LongOrg, OrgShort: id.Org,
		IssuedDate: courses.FormatDate(issued), IssuedAt: issued,
		Grade: req.Grade, GradeText: s.GradeText(req.Grade),
		CertificateType: s.CertsAreCalled, AssociationText: s.AssociationText,
		CertificateID: job.VerifyUuid,
	}
	if f.Org == "" {
		f.Org = id.Org
	}
	if verify {
		f.VerifyURL = h.cfg.VerifyURL + "/cert/" + job.VerifyUuid
	}
	return Certificate{Fields: f, Design: design, Verify: verify, Grade: req.Grade}, nil
}

func (h *Handler) create(ctx context.Context, job *certdv1.Job, req pipeline.Request) (*certdv1.Result, error) {
	c, err := h.Resolve(job, req)
	if err != nil {
		return nil, err
	}
	pdf, err := h.cfg.Renderer.Render(c.Design, c.Fields)
	if document.IsPermanent(err) {
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
			CertificateID: job.VerifyUuid, Grade: c.Grade,
			DownloadURL:    downloadURL,
			SignatureURL:   h.cfg.VerifyURL + "/" + h.sigKey(job.VerifyUuid),
			PublicKeyURL:   h.cfg.VerifyURL + "/" + PublicKeyKey(h.cfg.Signer.Fingerprint()),
			KeyFingerprint: h.cfg.Signer.Fingerprint(), KeyID: h.cfg.Signer.KeyID(),
			VerifyURL: c.Fields.VerifyURL,
		}
		valid, err := pages.Valid(pc)
		if err == nil {
			verify, err = pages.Verify(pc)
		}
		if pages.IsPermanent(err) {
			return nil, permanent("verification page: %v", err)
		} else if err != nil {
			return nil, fmt.Errorf("verification pages: %w", err)
		}
		files = append(files,
			file{h.sigKey(job.VerifyUuid), "application/pgp-signature", sig},
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
		Answer:      pipeline.SuccessAnswer(req.Action, job.DownloadUuid, job.VerifyUuid, req.Username, req.CourseID, downloadURL),
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
