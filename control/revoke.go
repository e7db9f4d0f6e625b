package control

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Revoker revokes one certificate's credential by verify uuid and draws its
// pages again as revoked (*consumer.Revoker).
type Revoker interface {
	Revoke(ctx context.Context, verifyUUID, reason string) (consumer.Revocation, error)
}

// WithRevoker enables Revoke. Without it Revoke answers FailedPrecondition
// (the control process has no storage or no status list).
func WithRevoker(r Revoker) Option { return func(s *Service) { s.revoker = r } }

// Bounds of one Revoke call.
const (
	MaxRevokeTargets = 1000
	MaxRevokeReason  = 1024
)

// Revoke revokes certificates by job id or verify uuid, without deleting
// them: the credential's status bit is set (one compare-and-set owner,
// package statuslist), the date and reason are kept with it and, for jobs
// given by id, on the job record (revoked_at, revoke_reason); valid.html
// and verify.html are drawn again as revoked. Revoking again is harmless
// and keeps the first date and reason.
func (s *Service) Revoke(ctx context.Context, req *certdv1.RevokeRequest) (*certdv1.RevokeResponse, error) {
	if s.revoker == nil {
		return nil, status.Error(codes.FailedPrecondition, "this control process cannot revoke: start it with storage and credential settings")
	}
	reason := strings.TrimSpace(req.GetReason())
	if reason == "" {
		return nil, invalid("reason is required")
	}
	if len(reason) > MaxRevokeReason {
		return nil, invalid("reason is longer than %d bytes", MaxRevokeReason)
	}
	if n := len(req.GetJobIds()) + len(req.GetVerifyUuids()); n == 0 {
		return nil, invalid("give job_ids or verify_uuids")
	} else if n > MaxRevokeTargets {
		return nil, invalid("%d certificates in one call; at most %d", n, MaxRevokeTargets)
	}
	type target struct{ given, jobID, verify string }
	var targets []target
	resp := &certdv1.RevokeResponse{}
	for _, id := range req.GetJobIds() {
		id = strings.TrimSpace(id)
		if !validID(id) {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: clip(id, 80), Reason: "not a job id"})
			continue
		}
		rec, err := s.p.Records.Get(ctx, id)
		if errors.Is(err, pipeline.ErrNotFound) {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: id, Reason: "no such job"})
			continue
		} else if err != nil {
			return nil, s.grpcError("revoke", err)
		}
		if rec.GetAction() == certdv1.Action_ACTION_REMOVE || !rec.GetAnswerOk() || !lms.IsUUID(rec.GetVerifyUuid()) {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: id, Reason: "the job made no certificate"})
			continue
		}
		targets = append(targets, target{given: id, jobID: id, verify: rec.GetVerifyUuid()})
	}
	for _, v := range req.GetVerifyUuids() {
		v = strings.TrimSpace(v)
		if !lms.IsUUID(v) {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: clip(v, 80), Reason: "not a verify uuid"})
			continue
		}
		targets = append(targets, target{given: v, verify: v})
	}
	for _, t := range targets {
		r, err := s.revoker.Revoke(ctx, t.verify, reason)
		if errors.Is(err, consumer.ErrNotRevocable) {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: t.given, Reason: "the certificate has no credential to revoke"})
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, s.grpcError("revoke", ctx.Err())
			}
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: t.given, Reason: err.Error()})
			continue
		}
		if t.jobID != "" {
			s.recordRevocation(ctx, t.jobID, r.At, r.Reason)
		}
		resp.Revoked = append(resp.Revoked, &certdv1.RevokedCertificate{
			VerifyUuid: t.verify, JobId: t.jobID, RevokedAt: timestamppb.New(r.At), Reason: r.Reason, Already: r.Already,
		})
		if !r.Already {
			s.log.Info("certificate revoked by operator", "job", t.jobID, "verify_uuid", t.verify, "reason", clip(r.Reason, 120))
		}
	}
	return resp, nil
}

// recordRevocation notes the revocation on the job record (best effort:
// the status entry is the authority).
func (s *Service) recordRevocation(ctx context.Context, id string, at time.Time, reason string) {
	if err := s.lifecycle().Revoked(ctx, id, at, reason); err != nil {
		s.log.Warn("revoked, but the job record does not say so", "job", id, "err", err)
	}
}
