package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/lms"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// PublishJob puts a job on its action's subject. The message id makes a
// republish of the same job generation within the stream's duplicate window
// a no-op.
func (p *Pipeline) PublishJob(ctx context.Context, job *certdv1.Job) error {
	b, err := marshal(job)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("job/%s/%d", job.Id, job.Generation)
	if _, err := p.JS.Publish(ctx, JobSubject(job.Action), b, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish job %s: %w", job.Id, err)
	}
	return nil
}

// PublishResult puts a result on its source's results subject.
func (p *Pipeline) PublishResult(ctx context.Context, source certdv1.Source, res *certdv1.Result) error {
	b, err := marshal(res)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("result/%s/%d", res.JobId, res.Generation)
	if !res.Ok {
		id += "/error"
	}
	if _, err := p.JS.Publish(ctx, ResultSubject(source), b, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish result %s: %w", res.JobId, err)
	}
	return nil
}

// JobFromRecord rebuilds the job message of a record (for requeue and for
// republishing a job the bridge accepted but could not publish).
func JobFromRecord(rec *certdv1.JobRecord) *certdv1.Job {
	return &certdv1.Job{
		Id: rec.Id, Action: rec.Action, Source: rec.Source, Request: rec.Request,
		DownloadUuid: rec.DownloadUuid, VerifyUuid: rec.VerifyUuid,
		Generation: rec.Generation, AcceptedAt: rec.CreatedAt,
	}
}

// FailResult is the result that gives up on a held job (held too long, or
// failed by an operator): an error answer with reason, or, when the job had
// produced a certificate that xqueue refused to take, that stored answer,
// since the certificate exists.
func FailResult(rec *certdv1.JobRecord, reason string) *certdv1.Result {
	if rec.AnswerOk && len(rec.Answer) > 0 {
		return &certdv1.Result{
			JobId: rec.Id, Generation: rec.Generation, Ok: true, Answer: rec.Answer,
			DownloadUrl: rec.DownloadUrl, VerifyUrl: rec.VerifyUrl,
		}
	}
	return &certdv1.Result{
		JobId: rec.Id, Generation: rec.Generation, Ok: false,
		Answer:      lms.ErrorAnswer(rec.Username, rec.CourseId, reason),
		ErrorReason: reason,
	}
}

// ErrNotHeld is returned by GiveUp for a job that is no longer held dead
// (requeued, or given up already by someone else).
var ErrNotHeld = errors.New("job is not held")

// KeepAlive tells JetStream every interval that msg is still being worked
// on, so that a slow job or post is not redelivered to another worker while
// this one is healthy. stop ends it and waits for its goroutine.
func KeepAlive(ctx context.Context, msg jetstream.Msg, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { cancel(); <-done }
}
