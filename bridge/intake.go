package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// minPending is the smallest backpressure cap: enough to keep a few
// consumers busy before any throughput has been measured.
const minPending = 64

// intake polls xqueue and pulls while there is work, the intake switch is
// on and the pipeline is not full.
func (b *Bridge) intake(ctx context.Context) error {
	b.log.Info("intake started", "poll_interval", b.pollInterval, "concurrency", b.pullConcurrency)
	failures := 0
	for {
		wait, err := b.poll(ctx)
		if err != nil {
			failures++
			wait = pipeline.Backoff(failures, b.pollInterval, 30*time.Second)
			if ctx.Err() == nil {
				b.log.Warn("xqueue poll failed", "err", err, "retry_in", wait.Round(time.Millisecond))
			}
		} else {
			failures = 0
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// poll does one round: it returns how long to wait before the next.
func (b *Bridge) poll(ctx context.Context) (time.Duration, error) {
	st, err := b.p.Intake(ctx)
	if err != nil {
		return 0, err
	}
	if st.Paused {
		return b.pollInterval, nil
	}
	n, err := b.xq.QueueLength(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue length: %w", err)
	}
	if n == 0 {
		return b.pollInterval, nil
	}
	pending, err := b.p.JobsPending(ctx)
	if err != nil {
		return 0, err
	}
	limit := b.pendingLimit()
	if pending >= limit {
		b.log.Debug("backpressure: pipeline full", "pending", pending, "limit", limit)
		return b.pollInterval, nil
	}
	budget := int(min(uint64(n), limit-pending))
	pulled, err := b.pullBatch(ctx, budget)
	if err != nil {
		return 0, err
	}
	if pulled == 0 {
		return b.pollInterval, nil // everything left is under lease
	}
	return 0, nil
}

// pendingLimit is the backpressure cap: jobs that the consumers can finish
// within one lease at the measured rate, so that accepted jobs are not
// offered again by xqueue while they wait.
func (b *Bridge) pendingLimit() uint64 {
	if b.maxPending > 0 {
		return b.maxPending
	}
	l := uint64(b.rate.perSecond() * b.lease.Seconds() * 0.8)
	return max(l, minPending)
}

// pullBatch pulls up to budget submissions with bounded concurrency.
func (b *Bridge) pullBatch(ctx context.Context, budget int) (int, error) {
	var (
		mu     sync.Mutex
		pulled int
		first  error
		wg     sync.WaitGroup
		next   = make(chan struct{})
	)
	go func() {
		defer close(next)
		for i := 0; i < budget; i++ {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < min(b.pullConcurrency, budget); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				sub, err := b.xq.Pull(ctx)
				if errors.Is(err, xqueue.ErrQueueEmpty) {
					break
				}
				if err == nil {
					err = b.accept(ctx, sub)
				}
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					pulled++
				}
				mu.Unlock()
				if err != nil {
					break
				}
			}
			for range next { // let the feeder finish
			}
		}()
	}
	wg.Wait()
	return pulled, first
}

// accept records a pulled submission and publishes it, or, for a
// submission seen before, refreshes its key and answers it again if it was
// answered already.
func (b *Bridge) accept(ctx context.Context, sub *xqueue.Submission) error {
	id := "xq-" + strconv.FormatInt(sub.Header.SubmissionID, 10)
	req, bad := pipeline.ParseRequest(sub.Body)
	action, _ := pipeline.ParseAction(req.Action)
	rec := &certdv1.JobRecord{
		Id:           id,
		Source:       certdv1.Source_SOURCE_XQUEUE,
		Action:       action,
		State:        certdv1.JobState_JOB_STATE_ACCEPTED,
		SubmissionId: sub.Header.SubmissionID,
		XqueueKey:    sub.Header.SubmissionKey,
		Username:     req.Username,
		CourseId:     req.CourseID,
		DownloadUuid: pipeline.NewUUID(),
		VerifyUuid:   pipeline.NewUUID(),
		Request:      sub.Body,
	}
	created, existing, err := b.p.Records.Create(ctx, rec)
	if err != nil {
		return err
	}
	if created {
		b.log.Info("accepted", "job", id, "action", req.Action, "course_id", req.CourseID)
		return b.dispatch(ctx, rec, bad)
	}
	// Seen before: keep the newest key so the answer uses it.
	rec, err = b.p.Records.Update(ctx, id, func(r *certdv1.JobRecord) error {
		if r.XqueueKey == sub.Header.SubmissionKey {
			return pipeline.ErrNoChange
		}
		r.XqueueKey = sub.Header.SubmissionKey
		return nil
	})
	if err != nil {
		return err
	}
	b.log.Debug("offered again", "job", id, "state", rec.State.String(), "prior_state", existing.State.String())
	switch rec.State {
	case certdv1.JobState_JOB_STATE_ACCEPTED:
		// Recorded but maybe never published (a crash in between): publish
		// now. A publish that did happen is deduplicated by message id.
		return b.dispatch(ctx, rec, bad)
	case certdv1.JobState_JOB_STATE_ANSWERED, certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN:
		// xqueue offers a submission we answered (a lost or racing answer):
		// answer again from the stored result with the new key.
		b.log.Info("answering again from stored result", "job", id)
		return b.postXqueue(ctx, rec, true)
	}
	return nil
}

// dispatch publishes a newly accepted job, or for a body that cannot be a
// job, the error answer.
func (b *Bridge) dispatch(ctx context.Context, rec *certdv1.JobRecord, bad error) error {
	if bad != nil {
		b.log.Warn("bad job body", "job", rec.Id, "reason", bad.Error())
		res := &certdv1.Result{
			JobId: rec.Id, Generation: rec.Generation, Ok: false, Permanent: true,
			Answer:      pipeline.ErrorAnswer(rec.Username, rec.CourseId, bad.Error()),
			ErrorReason: bad.Error(),
		}
		return b.p.PublishResult(ctx, rec.Source, res)
	}
	if err := b.p.PublishJob(ctx, pipeline.JobFromRecord(rec)); err != nil {
		return err
	}
	_, err := b.p.Records.Update(ctx, rec.Id, func(r *certdv1.JobRecord) error {
		if r.State != certdv1.JobState_JOB_STATE_ACCEPTED {
			return pipeline.ErrNoChange // a consumer got there first
		}
		b.p.Records.Transition(r, certdv1.JobState_JOB_STATE_QUEUED, "", b.worker.Id, b.worker.Region)
		return nil
	})
	return err
}
