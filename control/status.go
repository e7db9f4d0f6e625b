package control

import (
	"cmp"
	"context"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// GetStatus is the at-a-glance view: xqueue and its queue length, the
// intake switch, per-action consumer figures, results waiting to be posted,
// job counts by state and the live workers, sorted by region.
func (s *Service) GetStatus(ctx context.Context, _ *certdv1.GetStatusRequest) (_ *certdv1.GetStatusResponse, err error) {
	resp := &certdv1.GetStatusResponse{At: timestamppb.New(s.now()), JobsByState: map[string]int64{}}

	// xqueue: a failure is part of the answer, not an error of the call.
	resp.Xqueue = &certdv1.XqueueStatus{Configured: s.xq != nil, Url: s.xqURL}
	if s.xq != nil {
		qctx, cancel := context.WithTimeout(ctx, s.xqTimeout)
		n, err := s.xq.QueueLength(qctx)
		cancel()
		if err != nil {
			resp.Xqueue.Error = err.Error()
		} else {
			resp.Xqueue.Reachable, resp.Xqueue.QueueLength = true, int64(n)
		}
	}

	in, err := s.p.Intake(ctx)
	if err != nil {
		return nil, s.grpcError("status", err)
	}
	resp.IntakePaused = in.Paused
	resp.Intake = in

	holders, err := s.p.IntakeHolders(ctx)
	if err != nil {
		return nil, s.grpcError("status", err)
	}
	for _, h := range holders {
		resp.IntakeHolders = append(resp.IntakeHolders, &certdv1.IntakeHolder{
			Queue: h.Queue, HolderId: h.ID, Host: h.Host, Region: h.Region, Pid: int64(h.PID),
			TtlMs: h.TTLMillis, Since: timestamppb.New(h.Since), Revision: h.Revision,
		})
	}

	for _, a := range pipeline.Actions {
		name := pipeline.ConsumerName(a)
		info, err := s.p.JobStats(ctx, a)
		if err != nil {
			return nil, s.grpcError("status", err)
		}
		resp.Actions = append(resp.Actions, &certdv1.ActionStatus{
			Action:       a,
			Consumer:     name,
			Pending:      info.NumPending,
			InFlight:     uint64(max(info.NumAckPending, 0)),
			Redelivered:  uint64(max(info.NumRedelivered, 0)),
			WaitingPulls: uint64(max(info.NumWaiting, 0)),
		})
	}

	resp.ResultsWaiting, err = s.p.ResultsWaiting(ctx)
	if err != nil {
		return nil, s.grpcError("status", err)
	}

	err = s.p.Records.Scan(ctx, func(r *certdv1.JobRecord) bool {
		resp.JobsByState[r.State.String()]++
		return true
	})
	if err != nil {
		return nil, s.grpcError("status", err)
	}

	workers, err := s.p.ListWorkers(ctx)
	if err != nil {
		return nil, s.grpcError("status", err)
	}
	slices.SortFunc(workers, func(a, b *certdv1.Worker) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.Role, b.Role), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Id, b.Id))
	})
	resp.Workers = workers
	return resp, nil
}

// PauseIntake stops the bridge pulling from xqueue (it checks the switch
// before every poll and stops calling get_queuelen); jobs already queued
// still drain.
func (s *Service) PauseIntake(ctx context.Context, req *certdv1.PauseIntakeRequest) (_ *certdv1.IntakeStatus, err error) {
	st := &certdv1.IntakeStatus{Paused: true, Reason: clip(req.GetReason(), 500), Since: timestamppb.New(s.now())}
	if err := s.p.SetIntake(ctx, st); err != nil {
		return nil, s.grpcError("pause intake", err)
	}
	s.log.Warn("intake paused by operator", "reason", st.Reason)
	return st, nil
}

// ResumeIntake lets the bridge pull from xqueue again.
func (s *Service) ResumeIntake(ctx context.Context, _ *certdv1.ResumeIntakeRequest) (_ *certdv1.IntakeStatus, err error) {
	st := &certdv1.IntakeStatus{Paused: false, Since: timestamppb.New(s.now())}
	if err := s.p.SetIntake(ctx, st); err != nil {
		return nil, s.grpcError("resume intake", err)
	}
	s.log.Info("intake resumed by operator")
	return st, nil
}
