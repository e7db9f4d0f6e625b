package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// errSkip marks a result that needs no posting (stale or already answered).
var errSkip = errors.New("skip")

// relayFunc posts one result. A nil error acks the message; errRetry naks
// it with backoff; errTerm drops it (only for undecodable messages).
type relayFunc func(ctx context.Context, rec *certdv1.JobRecord) error

var (
	errRetry = errors.New("retry later")
	errTerm  = errors.New("cannot be processed")
)

// newRelay binds to a durable results consumer and returns the loop that
// serves it with a pool of posting goroutines.
func (b *Bridge) newRelay(ctx context.Context, durable string, post relayFunc) (func(context.Context) error, error) {
	cons, err := b.p.JS.Consumer(ctx, pipeline.ResultsStream, durable)
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", durable, err)
	}
	return func(ctx context.Context) error {
		it, err := cons.Messages(jetstream.PullMaxMessages(b.relayWorkers))
		if err != nil {
			return fmt.Errorf("consume %s: %w", durable, err)
		}
		// Posts under way finish with their own context when ctx ends, so an
		// answer xqueue accepted is always recorded.
		var wg sync.WaitGroup
		sem := make(chan struct{}, b.relayWorkers)
		defer wg.Wait()
		defer it.Stop()
		for {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			msg, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				<-sem
				if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return nil
				}
				b.log.Warn("relay receive failed", "consumer", durable, "err", err)
				if !sleep(ctx, time.Second) {
					return nil
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				b.relayMsg(context.WithoutCancel(ctx), msg, post)
			}()
		}
	}, nil
}

// relayMsg stores a result in its record, posts it and settles the message.
func (b *Bridge) relayMsg(ctx context.Context, msg jetstream.Msg, post relayFunc) {
	res := &certdv1.Result{}
	if err := proto.Unmarshal(msg.Data(), res); err != nil || res.JobId == "" {
		b.log.Error("undecodable result dropped", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("undecodable result")
		return
	}
	log := b.log.With("job", res.JobId)
	rec, err := b.p.Records.Update(ctx, res.JobId, func(r *certdv1.JobRecord) error {
		if res.Generation < r.Generation || r.State == certdv1.JobState_JOB_STATE_ANSWERED {
			return errSkip
		}
		r.Answer, r.AnswerOk, r.ErrorReason = res.Answer, res.Ok, res.ErrorReason
		if res.Ok {
			r.DownloadUrl, r.VerifyUrl = res.DownloadUrl, res.VerifyUrl
		}
		if r.State != certdv1.JobState_JOB_STATE_RESULT_READY {
			b.p.Records.Transition(r, certdv1.JobState_JOB_STATE_RESULT_READY, res.ErrorReason, res.Worker, res.Region)
		}
		return nil
	})
	switch {
	case errors.Is(err, errSkip):
		log.Debug("result already answered or stale")
		_ = msg.Ack()
		return
	case errors.Is(err, pipeline.ErrNotFound):
		log.Error("result for a job with no record dropped")
		_ = msg.TermWithReason("no job record")
		return
	case err != nil:
		log.Warn("record result failed", "err", err)
		b.nak(msg)
		return
	}
	b.count(1, 0, 0)
	err = post(ctx, rec)
	b.count(-1, 0, 0)
	switch {
	case err == nil:
		b.rate.add(1)
		if rec.AnswerOk {
			b.count(0, 1, 0)
		} else {
			b.count(0, 0, 1)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("ack result failed (it will be skipped when redelivered)", "err", err)
		}
	case errors.Is(err, errTerm):
		_ = msg.TermWithReason(err.Error())
	default:
		log.Warn("posting result failed; will retry", "err", err)
		b.nak(msg)
	}
}

func (b *Bridge) nak(msg jetstream.Msg) {
	n := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		n = md.NumDelivered
	}
	_ = msg.NakWithDelay(pipeline.Backoff(int(n), time.Second, 2*time.Minute))
}

// relayToXqueue posts a result with put_result.
func (b *Bridge) relayToXqueue(ctx context.Context, rec *certdv1.JobRecord) error {
	return b.postXqueue(ctx, rec)
}

// postXqueue posts the stored answer of rec with the newest key, retrying
// at once when a newer key turns up, and records what happened.
func (b *Bridge) postXqueue(ctx context.Context, rec *certdv1.JobRecord) error {
	log := b.log.With("job", rec.Id, "submission_id", rec.SubmissionId)
	for attempt := 0; ; attempt++ {
		used := rec.XqueueKey
		err := b.xq.PutResult(ctx, xqueue.Header{SubmissionID: rec.SubmissionId, SubmissionKey: used}, rec.Answer)
		switch {
		case err == nil:
			_, err := b.p.Records.Update(ctx, rec.Id, func(r *certdv1.JobRecord) error {
				r.AnswersPosted++
				b.p.Records.Transition(r, certdv1.JobState_JOB_STATE_ANSWERED, answerNote(r), b.worker.Id, b.worker.Region)
				return nil
			})
			if err != nil {
				log.Error("answer posted but not recorded", "err", err)
			} else {
				log.Info("answered", "ok", rec.AnswerOk)
			}
			return nil
		case errors.Is(err, xqueue.ErrIncorrectKey):
			fresh, gerr := b.p.Records.Get(ctx, rec.Id)
			if gerr != nil {
				return gerr
			}
			if fresh.XqueueKey != used && attempt < 5 {
				rec = fresh
				continue
			}
			// xqueue leased the submission to someone else: the bridge
			// records the new key when it pulls the re-offer.
			return fmt.Errorf("%w: waiting for xqueue to offer the submission again: %w", errRetry, err)
		case errors.Is(err, xqueue.ErrOutcomeUnknown):
			log.Warn("put_result outcome unknown; will answer again if xqueue offers it again", "err", err)
			return b.mark(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN, err.Error())
		case errors.Is(err, xqueue.ErrNoSubmission):
			log.Warn("xqueue no longer has this submission", "err", err)
			return b.mark(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, err.Error())
		case xqueue.IsPermanent(err):
			log.Error("xqueue refused the answer; holding the job", "err", err)
			return b.mark(ctx, rec.Id, certdv1.JobState_JOB_STATE_DEAD, err.Error())
		default:
			return err
		}
	}
}

func answerNote(r *certdv1.JobRecord) string {
	if r.AnswerOk {
		return "answered"
	}
	return "answered with error: " + r.ErrorReason
}

// mark moves a record to a state with a note; the result is settled.
func (b *Bridge) mark(ctx context.Context, id string, state certdv1.JobState, note string) error {
	_, err := b.p.Records.Update(ctx, id, func(r *certdv1.JobRecord) error {
		r.LastError = note
		if state == certdv1.JobState_JOB_STATE_DEAD {
			r.DeadAt = nowpb()
		}
		b.p.Records.Transition(r, state, note, b.worker.Id, b.worker.Region)
		return nil
	})
	return err
}

// relaySubmitted delivers the answer of a submitted job to its callback URL
// (if any). The answer also stays in the job record.
func (b *Bridge) relaySubmitted(ctx context.Context, rec *certdv1.JobRecord) error {
	if rec.CallbackUrl != "" {
		status, err := b.callback(ctx, rec.CallbackUrl, rec.Answer)
		switch {
		case err != nil:
			return err
		case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			// The receiver will never take it; keep the answer in the record.
			return b.mark(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, fmt.Sprintf("callback refused the answer: HTTP %d", status))
		case status >= 300:
			return fmt.Errorf("callback %s: HTTP %d", rec.CallbackUrl, status)
		}
	}
	_, err := b.p.Records.Update(ctx, rec.Id, func(r *certdv1.JobRecord) error {
		r.AnswersPosted++
		b.p.Records.Transition(r, certdv1.JobState_JOB_STATE_ANSWERED, answerNote(r), b.worker.Id, b.worker.Region)
		return nil
	})
	return err
}

func (b *Bridge) callback(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: callback %s: %w", errTerm, url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.callbackClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("callback %s: %w", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
