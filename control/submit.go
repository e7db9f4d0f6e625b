package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// maxCallbackURL bounds the length of a Submit callback URL.
const maxCallbackURL = 2048

// Submit queues a job without xqueue. The request is checked exactly as an
// LMS job body is (the body is built from the fields and parsed by
// lms.ParseRequest), so a bad request is refused now with
// InvalidArgument naming the field, instead of being answered with an error
// later. The job gets the id "sub-<uuid>", its uuids once, and is
// published; its answer goes to callback_url (if any) through the bridge's
// submit relay and stays in the job record.
func (s *Service) Submit(ctx context.Context, req *certdv1.SubmitRequest) (*certdv1.SubmitResponse, error) {
	action := req.GetAction()
	if action == certdv1.Action_ACTION_UNSPECIFIED {
		action = certdv1.Action_ACTION_CREATE
	}
	name := pipeline.ActionName(action)
	if name == "" {
		return nil, invalid("action: unknown action %d", action)
	}
	cb := strings.TrimSpace(req.GetCallbackUrl())
	if cb != "" {
		if err := checkCallbackURL(cb); err != nil {
			return nil, err
		}
	}
	body := map[string]any{"action": name}
	for k, v := range map[string]string{
		"username": req.GetUsername(), "course_id": req.GetCourseId(), "course_name": req.GetCourseName(),
		"name": req.GetName(), "grade": req.GetGrade(), "issued_date": req.GetIssuedDate(),
		"designation": req.GetDesignation(), "template_pdf": req.GetTemplatePdf(),
		"delete_download_uuid": req.GetDeleteDownloadUuid(), "delete_verify_uuid": req.GetDeleteVerifyUuid(),
	} {
		if v != "" {
			body[k] = v
		}
	}
	if req.GetExampleCertificate() {
		body["example_certificate"] = true
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, invalid("request: %v", err) // only invalid UTF-8 gets here
	}
	parsed, err := lms.ParseRequest(raw)
	if err != nil {
		return nil, invalid("invalid request: %v", err)
	}
	if name == "create" && (parsed.DeleteDownloadUUID != "" || parsed.DeleteVerifyUUID != "") {
		return nil, invalid("delete_download_uuid and delete_verify_uuid are for regen and remove, not create")
	}
	if name != "create" {
		// ParseRequest accepts these empty (the LMS may send a regen for a
		// certificate that has no files yet); a direct submitter names them.
		if name == "remove" && parsed.DeleteDownloadUUID == "" && parsed.DeleteVerifyUUID == "" {
			return nil, invalid("remove needs delete_download_uuid or delete_verify_uuid")
		}
	}

	if err := s.checkOwner(ctx, name, &parsed); err != nil {
		return nil, err
	}

	id := "sub-" + lms.NewUUID()
	if rid := req.GetRequestId(); rid != "" {
		if len(rid) > 200 {
			return nil, invalid("request_id is %d characters long; the limit is 200", len(rid))
		}
		sum := sha256.Sum256([]byte(rid))
		id = "sub-" + hex.EncodeToString(sum[:16])
	}
	rec := &certdv1.JobRecord{
		Id:           id,
		Source:       certdv1.Source_SOURCE_SUBMIT,
		Action:       action,
		Username:     parsed.Username,
		CourseId:     parsed.CourseID,
		DownloadUuid: lms.NewUUID(),
		VerifyUuid:   lms.NewUUID(),
		Request:      raw,
		CallbackUrl:  cb,
	}
	life := s.lifecycle()
	created, existing, err := life.Submit(ctx, rec, "submitted through the control service")
	switch {
	case created && err != nil:
		// Recorded but not published: the record is back to ACCEPTED, and
		// a retried Submit or a Requeue (once it counts as stuck)
		// publishes it.
		return nil, s.grpcError("submit: job "+rec.Id+" recorded but not queued (retry or requeue it)", err)
	case err != nil:
		return nil, s.grpcError("submit", err)
	case created:
		s.log.Info("job submitted", "job", rec.Id, "action", name, "course_id", rec.CourseId, "callback", cb != "")
		return &certdv1.SubmitResponse{Id: rec.Id, Job: rec}, nil
	}
	// A retry of a Submit with the same request_id: the job exists.
	if !bytes.Equal(existing.Request, raw) || existing.CallbackUrl != cb {
		return nil, status.Errorf(codes.AlreadyExists, "request_id was used for a different request (job %s)", existing.Id)
	}
	switch existing.State {
	case certdv1.JobState_JOB_STATE_ACCEPTED, certdv1.JobState_JOB_STATE_QUEUED:
		// The first Submit recorded the job but may not have published it:
		// publish it now (a publish that did happen is dropped by its
		// message id).
		if err := life.Republish(ctx, existing); err != nil {
			return nil, s.grpcError("submit: job "+existing.Id+" recorded but not queued (retry or requeue it)", err)
		}
		if cur, err := s.p.Records.Get(ctx, existing.Id); err == nil {
			existing = cur
		}
		s.log.Info("submit retried; job published again", "job", existing.Id)
	default:
		s.log.Info("submit retried; returning the existing job", "job", existing.Id)
	}
	return &certdv1.SubmitResponse{Id: existing.Id, Job: existing}, nil
}

// checkOwner refuses a remove or regen that names a uuid no job record
// ties to the same username and course id: the uuids are printed on every
// certificate, so knowing one must not let a submitter delete another
// learner's files. It reads every job record (as ListJobs does).
func (s *Service) checkOwner(ctx context.Context, action string, req *lms.Request) error {
	if action == "create" || (req.DeleteDownloadUUID == "" && req.DeleteVerifyUUID == "") {
		return nil
	}
	type claim struct {
		field, uuid string
		known, own  bool
	}
	claims := []*claim{}
	if u := req.DeleteDownloadUUID; u != "" {
		claims = append(claims, &claim{field: "delete_download_uuid", uuid: u})
	}
	if u := req.DeleteVerifyUUID; u != "" {
		claims = append(claims, &claim{field: "delete_verify_uuid", uuid: u})
	}
	err := s.p.Records.Scan(ctx, func(r *certdv1.JobRecord) bool {
		for _, c := range claims {
			if (c.field == "delete_download_uuid" && r.DownloadUuid == c.uuid) || (c.field == "delete_verify_uuid" && r.VerifyUuid == c.uuid) {
				c.known = true
				if r.Username == req.Username && r.CourseId == req.CourseID {
					c.own = true
				}
			}
		}
		return true
	})
	if err != nil {
		return s.grpcError("submit: check the uuids", err)
	}
	for _, c := range claims {
		switch {
		case !c.known:
			return status.Errorf(codes.PermissionDenied, "%s %s belongs to no job this service knows; only uuids issued for this username and course_id may be named", c.field, c.uuid)
		case !c.own:
			return status.Errorf(codes.PermissionDenied, "%s %s was issued for another username or course_id; only uuids issued for this username and course_id may be named", c.field, c.uuid)
		}
	}
	return nil
}

// checkCallbackURL accepts absolute http and https URLs with a host.
func checkCallbackURL(raw string) error {
	if len(raw) > maxCallbackURL {
		return invalid("callback_url is %d characters long; the limit is %d", len(raw), maxCallbackURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("callback_url: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("callback_url must be an http or https URL, not %q", clip(u.Scheme, 20))
	}
	if u.Host == "" || u.Hostname() == "" {
		return invalid("callback_url has no host")
	}
	return nil
}
