package pipeline

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

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

// FailResult is the error result that gives up on a job (held too long, or
// failed by an operator).
func FailResult(rec *certdv1.JobRecord, reason string) *certdv1.Result {
	return &certdv1.Result{
		JobId: rec.Id, Generation: rec.Generation, Ok: false,
		Answer:      ErrorAnswer(rec.Username, rec.CourseId, reason),
		ErrorReason: reason,
	}
}
