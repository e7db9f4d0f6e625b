package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// MaxIDs bounds the ids of one Requeue or Fail call.
const MaxIDs = 10000

// skip is a job left alone, with the reason the operator is told.
type skip struct{ reason string }

func (e *skip) Error() string { return e.reason }

// targets resolves the jobs a Requeue or Fail call names: the ids, in the
// order given, or every job matching a non-empty filter, newest first.
// Unknown or malformed ids are skipped with a reason.
func (s *Service) targets(ctx context.Context, ids []string, pf *certdv1.JobFilter) ([]*certdv1.JobRecord, []*certdv1.Skipped, error) {
	var recs []*certdv1.JobRecord
	var skipped []*certdv1.Skipped
	if len(ids) > 0 {
		if len(ids) > MaxIDs {
			return nil, nil, invalid("%d ids; at most %d per call", len(ids), MaxIDs)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			id = strings.TrimSpace(id)
			if seen[id] {
				continue
			}
			seen[id] = true
			if !validID(id) {
				skipped = append(skipped, &certdv1.Skipped{Id: clip(id, 80), Reason: "not a job id"})
				continue
			}
			rec, err := s.p.Records.Get(ctx, id)
			if errors.Is(err, pipeline.ErrNotFound) {
				skipped = append(skipped, &certdv1.Skipped{Id: id, Reason: "no such job"})
				continue
			}
			if err != nil {
				return nil, nil, s.grpcError("read job", err)
			}
			recs = append(recs, rec)
		}
		return recs, skipped, nil
	}
	f, err := newFilter(pf)
	if err != nil {
		return nil, nil, err
	}
	if f.empty() {
		return nil, nil, invalid("name the jobs: give ids or a non-empty filter")
	}
	err = s.p.Records.Scan(ctx, func(r *certdv1.JobRecord) bool {
		if f.match(r) {
			recs = append(recs, r)
		}
		return true
	})
	if err != nil {
		return nil, nil, s.grpcError("scan jobs", err)
	}
	sortNewestFirst(recs)
	return recs, nil, nil
}

// busyReason says why a job that is neither held nor stuck is left alone.
func busyReason(r *certdv1.JobRecord) string {
	switch r.State {
	case certdv1.JobState_JOB_STATE_QUEUED:
		return "queued: waiting for a consumer"
	case certdv1.JobState_JOB_STATE_RUNNING:
		if r.Worker != "" {
			return "running on " + r.Worker
		}
		return "running"
	case certdv1.JobState_JOB_STATE_RETRYING:
		return fmt.Sprintf("retrying after attempt %d: JetStream delivers it again", r.Attempts)
	case certdv1.JobState_JOB_STATE_RESULT_READY:
		return "result ready: waiting to be posted"
	case certdv1.JobState_JOB_STATE_ANSWERED:
		return "already answered"
	case certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN:
		return "answer outcome unknown: it is answered again when xqueue offers it again"
	case certdv1.JobState_JOB_STATE_ACCEPTED:
		return "accepted: being published"
	}
	return "in state " + r.State.String()
}

// requeueBlocker says why r cannot be requeued now, or "" if it can: only
// held (DEAD) jobs and jobs stuck ACCEPTED are.
func (s *Service) requeueBlocker(r *certdv1.JobRecord) string {
	if _, ok := pipeline.ParseAction(pipeline.ActionName(r.Action)); !ok {
		return "not a valid job (its request has no known action); Fail it instead"
	}
	switch r.State {
	case certdv1.JobState_JOB_STATE_DEAD:
		return ""
	case certdv1.JobState_JOB_STATE_ACCEPTED:
		age := s.now().Sub(r.GetUpdatedAt().AsTime())
		if age >= s.stuckAfter {
			return ""
		}
		return fmt.Sprintf("accepted %s ago: still being published (stuck after %s)", age.Round(time.Second), s.stuckAfter)
	}
	return busyReason(r)
}

// Requeue publishes held (DEAD) jobs, and jobs stuck ACCEPTED, again with
// the same uuids and fresh attempts: the record's generation is bumped
// (older deliveries and results are then ignored), attempts reset, dead_at
// cleared, and the job published. Every other job is skipped with the
// reason. With dry_run nothing changes and the answer says what would be
// requeued.
func (s *Service) Requeue(ctx context.Context, req *certdv1.RequeueRequest) (*certdv1.RequeueResponse, error) {
	recs, skipped, err := s.targets(ctx, req.GetIds(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	resp := &certdv1.RequeueResponse{DryRun: req.GetDryRun(), Skipped: skipped}
	for _, rec := range recs {
		if reason := s.requeueBlocker(rec); reason != "" {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: rec.Id, Reason: reason})
			continue
		}
		if req.GetDryRun() {
			resp.Requeued = append(resp.Requeued, rec.Id)
			continue
		}
		if err := s.requeue(ctx, rec.Id); err != nil {
			var sk *skip
			if errors.As(err, &sk) {
				resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: rec.Id, Reason: sk.reason})
				continue
			}
			if ctx.Err() != nil {
				return nil, s.grpcError("requeue", ctx.Err())
			}
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: rec.Id, Reason: err.Error()})
			continue
		}
		resp.Requeued = append(resp.Requeued, rec.Id)
	}
	if !req.GetDryRun() && len(resp.Requeued) > 0 {
		s.log.Info("jobs requeued by operator", "count", len(resp.Requeued), "skipped", len(resp.Skipped))
	}
	return resp, nil
}

// lifecycle is the lifecycle of job records, acting as this service.
func (s *Service) lifecycle() *pipeline.Lifecycle {
	return s.p.Lifecycle(s.worker.Id, s.worker.Region)
}

// requeue moves one record to a new generation and publishes it
// (Lifecycle.Requeue). If the publish fails the record goes back to its
// former state (keeping the new generation, so a publish that did get
// through is skipped by consumers).
func (s *Service) requeue(ctx context.Context, id string) error {
	var prev certdv1.JobState
	rec, err := s.lifecycle().Requeue(ctx, id, "requeued by operator", func(r *certdv1.JobRecord) error {
		if reason := s.requeueBlocker(r); reason != "" {
			return &skip{reason: "changed meanwhile: " + reason}
		}
		prev = r.State
		return nil
	})
	if err != nil {
		var sk *skip
		if !errors.As(err, &sk) {
			s.log.Error("requeue failed", "job", id, "err", err)
		}
		return err
	}
	s.log.Info("job requeued", "job", id, "generation", rec.Generation, "was", prev.String())
	return nil
}

// Fail gives up on held (DEAD) jobs: it publishes the error answer now
// (error_reason is the request's reason, or the job's last error) and the
// bridge's relay posts it. Jobs that are not held are skipped with the
// reason.
func (s *Service) Fail(ctx context.Context, req *certdv1.FailRequest) (*certdv1.FailResponse, error) {
	recs, skipped, err := s.targets(ctx, req.GetIds(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	resp := &certdv1.FailResponse{DryRun: req.GetDryRun(), Skipped: skipped}
	for _, rec := range recs {
		if rec.State != certdv1.JobState_JOB_STATE_DEAD {
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: rec.Id, Reason: "not held: " + busyReason(rec)})
			continue
		}
		if req.GetDryRun() {
			resp.Failed = append(resp.Failed, rec.Id)
			continue
		}
		if err := s.fail(ctx, rec, failReason(req.GetReason(), rec)); err != nil {
			if ctx.Err() != nil {
				return nil, s.grpcError("fail", ctx.Err())
			}
			resp.Skipped = append(resp.Skipped, &certdv1.Skipped{Id: rec.Id, Reason: err.Error()})
			continue
		}
		resp.Failed = append(resp.Failed, rec.Id)
	}
	if !req.GetDryRun() && len(resp.Failed) > 0 {
		s.log.Info("held jobs failed by operator", "count", len(resp.Failed), "skipped", len(resp.Skipped))
	}
	return resp, nil
}

// failReason is the error_reason the LMS stores.
func failReason(given string, rec *certdv1.JobRecord) string {
	if r := strings.TrimSpace(given); r != "" {
		return clip(r, 500)
	}
	if rec.LastError != "" {
		return clip("given up by an operator: "+rec.LastError, 500)
	}
	return "given up by an operator"
}

// fail answers a held job now (see Lifecycle.GiveUp: of Fail, the reaper
// and Requeue, only one wins).
func (s *Service) fail(ctx context.Context, rec *certdv1.JobRecord, reason string) error {
	if _, err := s.lifecycle().GiveUp(ctx, rec, reason); err != nil {
		if errors.Is(err, pipeline.ErrNotHeld) {
			return fmt.Errorf("not held any more (requeued or given up meanwhile)")
		}
		return fmt.Errorf("give up: %w", err)
	}
	s.log.Info("held job failed", "job", rec.Id, "reason", reason)
	return nil
}
