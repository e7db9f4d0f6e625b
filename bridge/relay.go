package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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
		if res.Generation < r.Generation || r.State == certdv1.JobState_JOB_STATE_ANSWERED ||
			r.State == certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN {
			// Answered, or maybe answered: only a re-offer by xqueue
			// (handled by intake) may post again.
			return errSkip
		}
		if r.PostingKey != "" {
			return nil // a post is under way or was cut off; post() decides
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
	b.counts.Add(1, 0, 0)
	stop := pipeline.KeepAlive(ctx, msg, b.p.Opts.AckWait/3)
	t0 := time.Now()
	err = post(ctx, rec)
	b.since("answer", t0)
	stop()
	b.counts.Add(-1, 0, 0)
	switch {
	case err == nil:
		b.rate.add(1)
		if rec.AnswerOk {
			b.counts.Add(0, 1, 0)
		} else {
			b.counts.Add(0, 0, 1)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("ack result failed (it will be skipped when redelivered)", "err", err)
		}
	case errors.Is(err, errTerm):
		_ = msg.TermWithReason(err.Error())
	default:
		var ri *retryIn
		if errors.As(err, &ri) {
			if !ri.free {
				log.Debug("result put back", "retry_in", ri.d)
			}
			_ = msg.NakWithDelay(ri.d)
			return
		}
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
	return b.postXqueue(ctx, rec, false)
}

// postXqueue posts the stored answer of rec with the newest key and records
// the outcome. Before posting it claims the post in the record
// (posting_key, by compare-and-set). A relay that finds a claim it did not
// make (an earlier relay crashed after posting, or another one is posting
// now) does not post: it records the outcome as unknown, and the answer is
// posted again only if xqueue offers the submission again. reoffer is true
// on that path: xqueue has just shown that no answer was accepted.
func (b *Bridge) postXqueue(ctx context.Context, rec *certdv1.JobRecord, reoffer bool) error {
	log := b.log.With("job", rec.Id, "submission_id", rec.SubmissionId)
	yield := false // retrying with a newer key: give way to any other poster
	for attempt := 0; ; attempt++ {
		unknown := false
		claimed, err := b.p.Records.Update(ctx, rec.Id, func(r *certdv1.JobRecord) error {
			unknown = false
			if !reoffer && (r.State == certdv1.JobState_JOB_STATE_ANSWERED || r.State == certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN) {
				return errSkip
			}
			if r.PostingKey != "" {
				if reoffer || yield {
					// A post is under way: at most one per job. If xqueue
					// refuses its key it retries at once with the newest.
					return errSkip
				}
				unknown = true
				r.PostingKey = ""
				b.p.Records.Transition(r, certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN,
					"an earlier post may have reached xqueue; answered again only if xqueue offers it again", b.worker.Id, b.worker.Region)
				return nil
			}
			r.PostingKey = r.XqueueKey
			return nil
		})
		switch {
		case errors.Is(err, errSkip):
			return nil
		case err != nil:
			return err
		case unknown:
			log.Warn("an earlier post of this answer may have reached xqueue; not posting again")
			return nil
		}
		used := claimed.PostingKey
		err = b.xq.PutResult(ctx, xqueue.Header{SubmissionID: claimed.SubmissionId, SubmissionKey: used}, claimed.Answer)
		switch {
		case err == nil:
			if err := b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, answerNote(claimed), true); err != nil {
				// The claim stays: a redelivery records the outcome as
				// unknown instead of posting twice.
				return fmt.Errorf("answer posted but not recorded: %w", err)
			}
			log.Info("answered", "ok", claimed.AnswerOk)
			return nil
		case errors.Is(err, xqueue.ErrOutcomeUnknown):
			log.Warn("put_result outcome unknown; will answer again if xqueue offers it again", "err", err)
			return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN, err.Error(), false)
		case errors.Is(err, xqueue.ErrNoSubmission):
			log.Warn("xqueue no longer has this submission", "err", err)
			return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, err.Error(), false)
		case errors.Is(err, xqueue.ErrRejected):
			// xqueue refused the body itself ("Incorrect reply format"):
			// retrying the same body cannot help; hold it for an operator.
			log.Error("xqueue refused the answer; holding the job", "err", err)
			return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_DEAD, err.Error(), false)
		}
		// Every other failure certainly did not post: release the claim.
		if cerr := b.release(ctx, rec.Id, used, err.Error()); cerr != nil {
			return cerr
		}
		if errors.Is(err, xqueue.ErrIncorrectKey) {
			fresh, gerr := b.p.Records.Get(ctx, rec.Id)
			if gerr != nil {
				return gerr
			}
			if fresh.XqueueKey != used && attempt < 5 {
				yield = true
				continue // the bridge has seen a newer key meanwhile
			}
			// xqueue leased the submission again: the bridge records the
			// new key when it pulls the re-offer.
			return fmt.Errorf("%w: waiting for xqueue to offer the submission again: %w", errRetry, err)
		}
		// Unreachable, 5xx before processing, authentication or a bad
		// reply: xqueue is having trouble; retry later with backoff.
		return fmt.Errorf("%w: %w", errRetry, err)
	}
}

func answerNote(r *certdv1.JobRecord) string {
	if r.AnswerOk {
		return "answered"
	}
	return "answered with error: " + r.ErrorReason
}

// settle records the outcome of a post and releases the claim.
func (b *Bridge) settle(ctx context.Context, id string, state certdv1.JobState, note string, posted bool) error {
	_, err := b.p.Records.Update(ctx, id, func(r *certdv1.JobRecord) error {
		r.PostingKey = ""
		if posted {
			r.AnswersPosted++
		} else {
			r.LastError = note
		}
		if state == certdv1.JobState_JOB_STATE_DEAD {
			r.DeadAt = nowpb()
		}
		b.p.Records.Transition(r, state, note, b.worker.Id, b.worker.Region)
		return nil
	})
	return err
}

// release drops this poster's claim (made with key used) of a post that
// certainly did not reach xqueue; a claim made since by someone else stays.
func (b *Bridge) release(ctx context.Context, id, used, note string) error {
	_, err := b.p.Records.Update(ctx, id, func(r *certdv1.JobRecord) error {
		if r.PostingKey == used {
			r.PostingKey = ""
		}
		r.LastError = note
		return nil
	})
	return err
}

// relaySubmitted delivers the answer of a submitted job to its callback URL
// (if any). The answer also stays in the job record. A receiver gets at
// most callbackPerHost posts at once; a job whose host is busy is put back
// with a short delay without counting an attempt, so a slow receiver holds
// at most that many relay workers. Failed attempts (no answer, 3xx, 5xx,
// 408, 429, an unresolvable host) are retried by NakWithDelay with backoff
// (or the receiver's Retry-After), callbackAttempts times in all; then the
// job is held dead with the reason, for Requeue or Fail.
func (b *Bridge) relaySubmitted(ctx context.Context, rec *certdv1.JobRecord) error {
	if rec.CallbackUrl == "" {
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, answerNote(rec), true)
	}
	log := b.log.With("job", rec.Id, "callback", redactURL(rec.CallbackUrl))
	host, err := callbackHost(rec.CallbackUrl)
	if err != nil {
		log.Warn("callback refused", "reason", err.Error())
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, "callback not sent: "+err.Error(), false)
	}
	if !b.hosts.acquire(host) {
		return &retryIn{d: b.callbackBackoff / 2, free: true}
	}
	actx, cancel := context.WithTimeout(ctx, b.callbackTimeout)
	status, retryAfter, err := b.callback(actx, rec.CallbackUrl, rec.Answer)
	cancel()
	b.hosts.release(host)
	var failure string
	switch {
	case errors.Is(err, errPrivateAddress):
		log.Warn("callback refused: not a public address")
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, "callback not sent: "+errPrivateAddress.Error(), false)
	case errors.Is(err, errTerm):
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, "callback not sent: "+err.Error(), false)
	case err != nil:
		failure = err.Error()
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		// The receiver will never take it; keep the answer in the record.
		b.attempts.done(rec.Id)
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, fmt.Sprintf("callback refused the answer: HTTP %d", status), false)
	case status >= 300:
		failure = fmt.Sprintf("callback %s: HTTP %d", redactURL(rec.CallbackUrl), status)
	default:
		b.attempts.done(rec.Id)
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED, answerNote(rec), true)
	}
	n := b.attempts.failed(rec.Id)
	if n >= b.callbackAttempts {
		b.attempts.done(rec.Id)
		reason := fmt.Sprintf("%s %d times, last: %s", callbackFailedPrefix, n, failure)
		log.Error("callback given up; job held for Requeue or Fail", "reason", reason)
		return b.settle(ctx, rec.Id, certdv1.JobState_JOB_STATE_DEAD, reason, false)
	}
	wait := pipeline.Backoff(n, b.callbackBackoff, 10*time.Minute)
	wait = max(wait, min(retryAfter, 30*time.Minute))
	log.Warn("callback failed; will retry", "attempt", n, "retry_in", wait.Round(time.Millisecond), "err", failure)
	return &retryIn{d: wait, err: errors.New(failure)}
}

// callbackFailedPrefix starts the reason of a job held for its callback.
const callbackFailedPrefix = "callback failed"

// retryIn asks relayMsg to put the message back for d. free marks a
// message that was not attempted (its receiver was busy).
type retryIn struct {
	d    time.Duration
	free bool
	err  error
}

func (r *retryIn) Error() string {
	if r.free {
		return "receiver busy"
	}
	return r.err.Error()
}

func (b *Bridge) callback(ctx context.Context, url string, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: callback %s: %w", errTerm, redactURL(url), err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.callbackClient.Do(req)
	if err != nil {
		if errors.Is(err, errPrivateAddress) {
			return 0, 0, errPrivateAddress
		}
		return 0, 0, fmt.Errorf("callback %s: %w", redactURL(url), errors.Unwrap(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")), nil
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// hostLimiter bounds the callbacks in flight per receiver host.
type hostLimiter struct {
	mu    sync.Mutex
	limit int
	busy  map[string]int
}

func (h *hostLimiter) acquire(host string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[host] >= h.limit {
		return false
	}
	h.busy[host]++
	return true
}

func (h *hostLimiter) release(host string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[host]--; h.busy[host] <= 0 {
		delete(h.busy, host)
	}
}

// attemptCounter counts failed callback attempts per job in this bridge.
// It is bounded: past maxTracked jobs the oldest counts are forgotten
// (those jobs get a few more attempts).
type attemptCounter struct {
	mu    sync.Mutex
	n     map[string]int
	order []string
}

const maxTracked = 10000

func (a *attemptCounter) failed(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.n[id]; !ok {
		if len(a.order) >= maxTracked {
			delete(a.n, a.order[0])
			a.order = a.order[1:]
		}
		a.order = append(a.order, id)
	}
	a.n[id]++
	return a.n[id]
}

func (a *attemptCounter) done(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.n, id) // its place in order is dropped lazily
}
