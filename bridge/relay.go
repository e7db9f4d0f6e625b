package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/worker"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// xqueuePosts bounds the put_result calls under way at once. xqueue calls
// the LMS inside put_result (up to about 25 s when the LMS hangs) on one of
// its few workers (4 in a usual deployment); more posts at once would
// occupy all of them and stall the intake's pulls and xqueue's other users.
const xqueuePosts = 2

// newRelay binds to the durable results consumer of source and returns
// the part that serves it on a worker pool of the given size: the pool
// pulls, keeps posts alive and settles each message from what handle
// returns (worker.Handler).
func (b *Bridge) newRelay(ctx context.Context, source certdv1.Source, workers int, handle worker.Handler) (func(context.Context) error, error) {
	durable := pipeline.RelayName(source)
	cons, err := b.p.ResultMessages(ctx, source)
	if err != nil {
		return nil, err
	}
	pool := worker.New(worker.Config{
		Workers: workers, AckWait: b.p.AckWait(), Log: b.log, Metrics: b.metrics,
		// Posts under way may finish when the bridge stops (bounded), so
		// that an answer the receiver accepted is recorded; a post cut
		// off keeps its claim and is settled as unknown on redelivery.
		DrainTimeout: b.callbackTimeout + acceptTimeout,
		RetryBase:    time.Second, RetryLimit: 2 * time.Minute,
		CheckEvery: b.checkEvery,
	})
	return func(ctx context.Context) error {
		return pool.Run(ctx, worker.Source{Name: durable, Consumer: cons, Handle: handle})
	}, nil
}

// decodeResult reads a result message. The message only says that the
// answer of a job generation waits in its record; the relays post the
// record's answer.
func decodeResult(d *worker.Delivery) (*certdv1.Result, error) {
	res := &certdv1.Result{}
	if err := proto.Unmarshal(d.Msg.Data(), res); err != nil || res.JobId == "" {
		return nil, worker.Drop(fmt.Sprintf("undecodable result on %s: %v", d.Msg.Subject(), err))
	}
	d.Annotate("job", res.JobId, "generation", res.Generation)
	return res, nil
}

// relayed settles a result message whose post did not happen: stale,
// answered already, or a post under way elsewhere are done (nil); a job
// with no record can never be posted (Drop); anything else (an answer
// not recorded yet, NATS or xqueue trouble) is retried with backoff.
func relayed(log *slog.Logger, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pipeline.ErrStale), errors.Is(err, pipeline.ErrDone), errors.Is(err, pipeline.ErrPostUnderWay):
		log.Debug("result needs no post", "reason", err)
		return nil
	case errors.Is(err, pipeline.ErrPostMayHaveHappened):
		log.Warn("an earlier post of this answer may have reached xqueue; not posting again")
		return nil
	case errors.Is(err, pipeline.ErrNotFound):
		return worker.Drop("no job record")
	}
	return err
}

// relayToXqueue posts the answer a result message announces with
// put_result.
func (b *Bridge) relayToXqueue(ctx context.Context, d *worker.Delivery) error {
	res, err := decodeResult(d)
	if err != nil {
		return err
	}
	return relayed(d.Log, b.postXqueue(ctx, d.Log, res, pipeline.ClaimResult))
}

// adopt stores the answer of a result message from a consumer of an older
// version (which published before it recorded, and left the answer to the
// relay) in the record, so that the record holds it as it does for every
// other job. Results of current consumers never need it.
func (b *Bridge) adopt(ctx context.Context, log *slog.Logger, res *certdv1.Result) (*certdv1.JobRecord, error) {
	if res == nil || len(res.Answer) == 0 {
		return nil, fmt.Errorf("job %s: %w", res.GetJobId(), pipeline.ErrNoAnswerYet)
	}
	log.Info("storing the answer of a result the record lacks (a consumer of an older version)")
	return b.life.Adopt(ctx, res)
}

// postXqueue posts the answer stored in a job's record with the newest key
// and records the outcome. Before posting it claims the post in the record
// (Lifecycle.Claim; kind says what a claim found set means). ClaimReoffer
// is the intake's path: xqueue has just shown that no answer was accepted.
func (b *Bridge) postXqueue(ctx context.Context, log *slog.Logger, res *certdv1.Result, kind pipeline.ClaimKind) error {
	id, gen := res.JobId, res.Generation
	adopted := false
	for attempt := 0; ; attempt++ {
		claimed, err := b.life.Claim(ctx, id, gen, kind)
		if errors.Is(err, pipeline.ErrNoAnswerYet) && kind == pipeline.ClaimResult && !adopted {
			adopted = true
			if _, err := b.adopt(ctx, log, res); err != nil {
				return err
			}
			claimed, err = b.life.Claim(ctx, id, gen, kind)
		}
		if err != nil {
			return err
		}
		if len(claimed.Answer) == 0 && kind == pipeline.ClaimResult {
			key := claimed.PostingKey
			if claimed, err = b.adopt(ctx, log, res); err != nil {
				return errors.Join(err, b.life.Release(ctx, id, key, err.Error()))
			}
		}
		used := claimed.PostingKey
		b.counts.Add(1, 0, 0)
		t0 := time.Now()
		err = b.xq.PutResult(ctx, xqueue.Header{SubmissionID: claimed.SubmissionId, SubmissionKey: used}, claimed.Answer)
		b.since("answer", t0)
		b.counts.Add(-1, 0, 0)
		switch {
		case err == nil:
			if err := b.life.Settle(ctx, id, certdv1.JobState_JOB_STATE_ANSWERED, answerNote(claimed), true); err != nil {
				// The claim stays: a redelivery records the outcome as
				// unknown instead of posting twice.
				return fmt.Errorf("answer posted but not recorded: %w", err)
			}
			b.answered(claimed)
			log.Info("answered", "ok", claimed.AnswerOk)
			return nil
		case errors.Is(err, xqueue.ErrOutcomeUnknown):
			log.Warn("put_result outcome unknown; will answer again if xqueue offers it again", "err", err)
			return b.life.Settle(ctx, id, certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN, err.Error(), false)
		case errors.Is(err, xqueue.ErrNoSubmission):
			log.Warn("xqueue no longer has this submission", "err", err)
			return b.life.Settle(ctx, id, certdv1.JobState_JOB_STATE_ANSWERED, err.Error(), false)
		case errors.Is(err, xqueue.ErrRejected):
			// xqueue refused the body itself ("Incorrect reply format"):
			// retrying the same body cannot help; hold it for an operator.
			log.Error("xqueue refused the answer; holding the job", "err", err)
			return b.life.Settle(ctx, id, certdv1.JobState_JOB_STATE_DEAD, err.Error(), false)
		}
		// Every other failure certainly did not post: drop our claim.
		if cerr := b.life.Release(ctx, id, used, err.Error()); cerr != nil {
			return cerr
		}
		if errors.Is(err, xqueue.ErrIncorrectKey) {
			fresh, gerr := b.p.Records.Get(ctx, id)
			if gerr != nil {
				return gerr
			}
			if fresh.XqueueKey != used && attempt < 5 {
				// The bridge has seen a newer key meanwhile: post with it,
				// giving way to any other poster.
				kind = pipeline.ClaimNewerKey
				continue
			}
			// xqueue leased the submission again: the bridge records the
			// new key when it pulls the re-offer.
			return fmt.Errorf("waiting for xqueue to offer the submission again: %w", err)
		}
		// Unreachable, 5xx before processing, authentication or a bad
		// reply: xqueue is having trouble; retry later with backoff.
		return fmt.Errorf("put_result: %w", err)
	}
}

// answered counts an answer delivered.
func (b *Bridge) answered(rec *certdv1.JobRecord) {
	b.rate.add(1)
	if rec.AnswerOk {
		b.counts.Add(0, 1, 0)
	} else {
		b.counts.Add(0, 0, 1)
	}
}

func answerNote(r *certdv1.JobRecord) string {
	if r.AnswerOk {
		return "answered"
	}
	return "answered with error: " + r.ErrorReason
}

// relaySubmitted delivers the answer of a submitted job, as stored in its
// record, to its callback URL (if any). The answer also stays in the job
// record. A receiver gets at most callbacksPerHost posts at once; a job
// whose host is busy is put back with a short delay without counting an
// attempt, so a slow receiver holds at most that many relay workers.
// Failed attempts (no answer, 3xx, 5xx, 408, 429, an unresolvable host)
// are put back with backoff (or the receiver's Retry-After),
// callbackAttempts times in all; then the job is held dead with the
// reason, for Requeue or Fail.
func (b *Bridge) relaySubmitted(ctx context.Context, d *worker.Delivery) error {
	res, err := decodeResult(d)
	if err != nil {
		return err
	}
	rec, err := b.life.Waiting(ctx, res.JobId, res.Generation)
	if errors.Is(err, pipeline.ErrNoAnswerYet) || (err == nil && len(rec.Answer) == 0) {
		if _, err = b.adopt(ctx, d.Log, res); err == nil {
			rec, err = b.life.Waiting(ctx, res.JobId, res.Generation)
		}
	}
	if err != nil {
		return relayed(d.Log, err)
	}
	return b.callbackAnswer(ctx, d.Log, rec)
}

// errReceiverBusy puts back a callback whose host has its limit of posts
// in flight; it is not an attempt.
var errReceiverBusy = errors.New("callback receiver busy")

func (b *Bridge) callbackAnswer(ctx context.Context, log *slog.Logger, rec *certdv1.JobRecord) error {
	settle := func(to certdv1.JobState, note string, posted bool) error {
		if err := b.life.Settle(ctx, rec.Id, to, note, posted); err != nil {
			return err
		}
		if to == certdv1.JobState_JOB_STATE_ANSWERED {
			b.answered(rec)
		}
		return nil
	}
	if rec.CallbackUrl == "" {
		// No callback: the answer is delivered by recording it; that is
		// the answer stage of such a job.
		t0 := time.Now()
		err := settle(certdv1.JobState_JOB_STATE_ANSWERED, answerNote(rec), true)
		b.since("answer", t0)
		return err
	}
	log = log.With("callback", redactURL(rec.CallbackUrl))
	host, err := callbackHost(rec.CallbackUrl)
	if err != nil {
		log.Warn("callback refused", "reason", err.Error())
		return settle(certdv1.JobState_JOB_STATE_ANSWERED, "callback not sent: "+err.Error(), false)
	}
	if !b.hosts.acquire(host) {
		return worker.RetryAfter(b.callbackBackoff/2, errReceiverBusy)
	}
	b.counts.Add(1, 0, 0)
	actx, cancel := context.WithTimeout(ctx, b.callbackTimeout)
	t0 := time.Now()
	status, retryAfter, err := b.callback(actx, rec.CallbackUrl, rec.Answer)
	b.since("answer", t0)
	cancel()
	b.hosts.release(host)
	b.counts.Add(-1, 0, 0)
	var failure string
	switch {
	case errors.Is(err, errPrivateAddress):
		log.Warn("callback refused: not a public address")
		return settle(certdv1.JobState_JOB_STATE_ANSWERED, "callback not sent: "+errPrivateAddress.Error(), false)
	case errors.Is(err, errBadCallback):
		return settle(certdv1.JobState_JOB_STATE_ANSWERED, "callback not sent: "+err.Error(), false)
	case err != nil:
		failure = err.Error()
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		// The receiver will never take it; keep the answer in the record.
		b.attempts.done(rec.Id)
		return settle(certdv1.JobState_JOB_STATE_ANSWERED, fmt.Sprintf("callback refused the answer: HTTP %d", status), false)
	case status >= 300:
		failure = fmt.Sprintf("callback %s: HTTP %d", redactURL(rec.CallbackUrl), status)
	default:
		b.attempts.done(rec.Id)
		return settle(certdv1.JobState_JOB_STATE_ANSWERED, answerNote(rec), true)
	}
	n := b.attempts.failed(rec.Id)
	if n >= b.callbackAttempts {
		b.attempts.done(rec.Id)
		reason := fmt.Sprintf("%s %d times, last: %s", callbackFailedPrefix, n, failure)
		log.Error("callback given up; job held for Requeue or Fail", "reason", reason)
		return settle(certdv1.JobState_JOB_STATE_DEAD, reason, false)
	}
	wait := pipeline.Backoff(n, b.callbackBackoff, 10*time.Minute)
	wait = max(wait, min(retryAfter, 30*time.Minute))
	log.Warn("callback failed; will retry", "attempt", n, "retry_in", wait.Round(time.Millisecond), "err", failure)
	return worker.RetryAfter(wait, errors.New(failure))
}

// callbackFailedPrefix starts the reason of a job held for its callback.
const callbackFailedPrefix = "callback failed"

// errBadCallback: a callback request that cannot even be built; it is
// never retried.
var errBadCallback = errors.New("callback cannot be sent")

func (b *Bridge) callback(ctx context.Context, url string, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: callback %s: %w", errBadCallback, redactURL(url), err)
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
