package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/intakelock"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// minPending is the smallest backpressure cap: enough to keep a few
// consumers busy before any throughput has been measured.
const minPending = 64

// Sizes of the accept stage: submissions pulled and not yet recorded are
// bounded by acceptWorkers*acceptQueue; immediate re-posts by maxReposts.
const (
	acceptWorkers = 4
	acceptQueue   = 16
	maxReposts    = 8
	// acceptTimeout bounds recording and publishing one submission; it
	// also lets pulled submissions be recorded during shutdown.
	acceptTimeout = 30 * time.Second
)

// queueNamer is implemented by xqueue clients that know their queue name
// (the lock key); others share one lock.
type queueNamer interface{ Queue() string }

// intake holds the queue's intake lock and, while it holds it, pulls one
// submission at a time. Pulled submissions go to the accept stage, which
// records and publishes them while the next get_submission is in flight.
func (b *Bridge) intake(ctx context.Context) error {
	queue := xqueue.DefaultQueue
	if qn, ok := b.xq.(queueNamer); ok {
		queue = qn.Queue()
	}
	acc := b.newAcceptStage(ctx)
	defer acc.stop()
	b.log.Info("intake started", "queue", queue, "poll_interval", b.pollInterval, "lock_ttl", b.lockTTL)
	if b.noLock {
		b.pullLoop(ctx, acc)
		return nil
	}
	// NATS may be unreachable for a while: keep trying; never pull
	// without the lock.
	for failures := 1; ; failures++ {
		kv, err := b.p.IntakeLockBucket(ctx)
		if err == nil {
			lock := intakelock.New(kv, queue, b.holderID, b.worker.Region, b.lockTTL, b.log)
			err = lock.Run(ctx, func(tenure context.Context) { b.pullLoop(tenure, acc) })
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := pipeline.Backoff(failures, time.Second, 30*time.Second)
		b.log.Warn("intake lock unavailable; not pulling", "err", err, "retry_in", wait.Round(time.Millisecond))
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// pullLoop polls xqueue and pulls while there is work, the intake switch is
// on and the pipeline is not full, until ctx (the lock tenure) ends.
func (b *Bridge) pullLoop(ctx context.Context, acc *acceptStage) {
	b.gauges.SetIntakeHolder(true)
	defer b.gauges.SetIntakeHolder(false)
	failures := 0
	for {
		wait, err := b.poll(ctx, acc)
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
			return
		}
	}
}

// poll does one round: it returns how long to wait before the next.
func (b *Bridge) poll(ctx context.Context, acc *acceptStage) (time.Duration, error) {
	if err := acc.failing(); err != nil {
		return 0, fmt.Errorf("recording pulled submissions fails: %w", err)
	}
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
	b.gauges.SetXQueueLength(n)
	if n == 0 {
		return b.pollInterval, nil
	}
	pending, err := b.p.JobsPending(ctx)
	if err != nil {
		return 0, err
	}
	pending += uint64(acc.inFlight.Load()) // pulled, not yet published
	limit := b.pendingLimit()
	if pending >= limit {
		b.log.Debug("backpressure: pipeline full", "pending", pending, "limit", limit)
		return b.pollInterval, nil
	}
	budget := int(min(uint64(n), limit-pending))
	pulled, err := b.pullSerial(ctx, acc, budget)
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

// pullSerial pulls up to budget submissions, one get_submission at a time,
// handing each to the accept stage.
func (b *Bridge) pullSerial(ctx context.Context, acc *acceptStage, budget int) (int, error) {
	pulled := 0
	for pulled < budget {
		if err := acc.failing(); err != nil {
			return pulled, fmt.Errorf("recording pulled submissions fails: %w", err)
		}
		t0 := time.Now()
		sub, err := b.xq.Pull(ctx)
		b.since("pull", t0)
		var big *xqueue.TooLargeError
		switch {
		case errors.Is(err, xqueue.ErrQueueEmpty):
			return pulled, nil
		case errors.As(err, &big) && big.Header.SubmissionID > 0:
			// Too large to read, but its header was recovered: answer it
			// once with an error rather than see it offered forever.
			sub = &xqueue.Submission{Header: big.Header}
			if !acc.add(ctx, item{sub: sub, bad: big}) {
				return pulled, nil
			}
		case err != nil:
			return pulled, err
		default:
			if !acc.add(ctx, item{sub: sub}) {
				return pulled, nil
			}
		}
		pulled++
	}
	return pulled, nil
}

// item is one pulled submission on its way into the pipeline; bad, when
// set, is why it cannot be a job.
type item struct {
	sub *xqueue.Submission
	bad error
}

// acceptStage records and publishes pulled submissions with a few workers.
// A submission always goes to the same worker (by submission_id), so offers
// of one submission are handled in pull order and the newest key wins.
type acceptStage struct {
	b       *Bridge
	ctx     context.Context // outlives the lock tenure: pulled work is recorded
	shards  []chan item
	workers sync.WaitGroup
	reposts sync.WaitGroup
	sem     chan struct{}
	lastErr atomic.Pointer[error]
	// inFlight counts submissions handed to the stage and not yet
	// recorded and published: backpressure counts them as pending.
	inFlight atomic.Int64
}

func (b *Bridge) newAcceptStage(ctx context.Context) *acceptStage {
	a := &acceptStage{b: b, ctx: context.WithoutCancel(ctx), sem: make(chan struct{}, maxReposts)}
	for i := 0; i < acceptWorkers; i++ {
		ch := make(chan item, acceptQueue)
		a.shards = append(a.shards, ch)
		a.workers.Add(1)
		go func() {
			defer a.workers.Done()
			for it := range ch {
				a.run(it)
			}
		}()
	}
	return a
}

// add queues a pulled submission; it blocks while its worker is behind.
// If ctx (the lock tenure) ends first it still queues the submission when
// there is room, and otherwise reports false: the submission stays leased
// in xqueue and comes back after the lease.
func (a *acceptStage) add(ctx context.Context, it item) bool {
	ch := a.shards[uint64(it.sub.Header.SubmissionID)%uint64(len(a.shards))]
	a.inFlight.Add(1)
	select {
	case ch <- it:
		return true
	case <-ctx.Done():
	}
	select {
	case ch <- it:
		return true
	default:
		a.inFlight.Add(-1)
		a.b.log.Warn("pulled submission not recorded: the intake stopped; xqueue offers it again after its lease",
			"job", jobID(it.sub.Header.SubmissionID))
		return false
	}
}

func (a *acceptStage) run(it item) {
	defer a.inFlight.Add(-1)
	ctx, cancel := context.WithTimeout(a.ctx, acceptTimeout)
	defer cancel()
	if err := a.b.accept(ctx, it, a); err != nil {
		a.b.log.Warn("recording a pulled submission failed; xqueue offers it again after its lease",
			"job", jobID(it.sub.Header.SubmissionID), "err", err)
		a.lastErr.Store(&err)
		return
	}
	a.lastErr.Store(nil)
}

// failing returns the last accept error, if the last accept failed.
func (a *acceptStage) failing() error {
	if p := a.lastErr.Load(); p != nil {
		a.lastErr.CompareAndSwap(p, nil) // one backoff per failure
		return *p
	}
	return nil
}

// repost posts a stored answer in the background, bounded by maxReposts,
// so that a slow put_result does not hold up the accept worker.
func (a *acceptStage) repost(rec *certdv1.JobRecord) {
	a.sem <- struct{}{}
	a.reposts.Add(1)
	go func() {
		defer a.reposts.Done()
		defer func() { <-a.sem }()
		log := a.b.log.With("job", rec.Id, "submission_id", rec.SubmissionId)
		if err := relayed(log, a.b.postXqueue(a.ctx, log, pipeline.ResultFromRecord(rec), pipeline.ClaimReoffer)); err != nil {
			log.Warn("answering a re-offered submission failed", "err", err)
		}
	}()
}

// stop lets the workers record what was pulled, then waits for them and
// for re-posts under way.
func (a *acceptStage) stop() {
	for _, ch := range a.shards {
		close(ch)
	}
	a.workers.Wait()
	a.reposts.Wait()
}

func jobID(submissionID int64) string { return "xq-" + strconv.FormatInt(submissionID, 10) }

// accept records a pulled submission and publishes it (Lifecycle.Submit),
// or records a body that cannot be a job with its error answer
// (Lifecycle.Reject); for a submission seen before, it refreshes its key
// (Reoffered) and publishes it again if it may never have been published,
// or posts its answer at once when one is waiting or was given already.
func (b *Bridge) accept(ctx context.Context, it item, acc *acceptStage) error {
	sub := it.sub
	id := jobID(sub.Header.SubmissionID)
	req, bad := lms.ParseRequest(sub.Body)
	if it.bad != nil {
		bad = it.bad
		var big *xqueue.TooLargeError
		if errors.As(it.bad, &big) {
			req = lms.Request{Username: big.Username, CourseID: big.CourseID}
		}
	}
	action, _ := pipeline.ParseAction(req.Action)
	rec := &certdv1.JobRecord{
		Id:           id,
		Source:       certdv1.Source_SOURCE_XQUEUE,
		Action:       action,
		SubmissionId: sub.Header.SubmissionID,
		XqueueKey:    sub.Header.SubmissionKey,
		Username:     req.Username,
		CourseId:     req.CourseID,
		DownloadUuid: lms.NewUUID(),
		VerifyUuid:   lms.NewUUID(),
		Request:      sub.Body,
	}
	var created bool
	var existing *certdv1.JobRecord
	var err error
	if bad != nil {
		res := &certdv1.Result{
			JobId: id, Ok: false,
			Answer:      lms.ErrorAnswer(rec.Username, rec.CourseId, bad.Error()),
			ErrorReason: bad.Error(),
		}
		created, existing, err = b.life.Reject(ctx, rec, res, "pulled from xqueue: "+bad.Error())
		if created {
			b.log.Warn("bad job body", "job", id, "reason", bad.Error())
		}
	} else {
		t0 := time.Now()
		created, existing, err = b.life.Submit(ctx, rec, "pulled from xqueue")
		if created && err == nil {
			b.since("publish", t0) // recorded and published
		}
		if created {
			b.log.Info("accepted", "job", id, "action", req.Action, "course_id", req.CourseID)
		}
	}
	if created || err != nil {
		return err
	}
	// The key of the offer before this one: a post claimed with it may
	// still be under way.
	var prevKey string
	if existing != nil {
		prevKey = existing.XqueueKey
	}
	// Seen before: keep the newest key so the answer uses it.
	rec, err = b.life.Reoffered(ctx, id, sub.Header.SubmissionKey)
	if err != nil {
		return err
	}
	b.log.Debug("offered again", "job", id, "state", rec.State.String())
	switch rec.State {
	case certdv1.JobState_JOB_STATE_ACCEPTED, certdv1.JobState_JOB_STATE_QUEUED:
		// Recorded but maybe never published (a crash in between): publish
		// again. A publish that did happen is dropped by message id.
		t0 := time.Now()
		if err := b.life.Republish(ctx, rec); err != nil {
			return err
		}
		b.since("publish", t0)
		return nil
	case certdv1.JobState_JOB_STATE_RESULT_READY:
		// The answer waits (an earlier post was refused for its key, or the
		// relay has not got to it): post it now with the new key, unless a
		// post with the previous offer's key may be under way (xqueue may
		// be calling the LMS with it; it retries with the newest key
		// itself if refused). A claim older than that belongs to a poster
		// that died: it has had a whole lease, longer than a put_result
		// may take, and left no result message to redeliver.
		if rec.PostingKey == "" || rec.PostingKey != prevKey {
			b.log.Info("answer waiting: posting it now with the new key", "job", id)
			acc.repost(rec)
		}
	case certdv1.JobState_JOB_STATE_ANSWERED, certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN:
		// xqueue offers a submission we answered (it lost the retirement,
		// or an earlier post's outcome is unknown): answer again from the
		// stored result with the new key.
		b.log.Info("answering again from stored result", "job", id, "state", rec.State.String())
		acc.repost(rec)
	}
	return nil
}
