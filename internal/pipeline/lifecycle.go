package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Lifecycle owns every state change of job records. Each method is one
// Event: it reads the record, checks the change against the transitions
// table (transitions.go) and writes it with compare-and-set, retrying on
// conflict. Callers never set a record's state themselves.
//
// Order of recording and publishing, everywhere: the record is written
// first, the message is published second. A receiver therefore always finds
// the record in the state its message implies (a consumer never meets a job
// without a record; a relay always finds the answer in the record). When
// the publish fails, the method undoes its record change (EventUndo) and
// returns the error. A crash between the two leaves a record whose message
// may be missing; the paths that repair it are: a redelivered job whose
// record is RESULT_READY sends its result again (Resend); an xqueue re-offer
// or a repeated Submit of an ACCEPTED or QUEUED job publishes it again
// (Republish); an operator requeues a job stuck ACCEPTED. Every publish
// carries a message id, so a repeated publish within the stream's
// duplicate window is dropped by JetStream.
//
// The answer lives in the record: Finish and GiveUp store it, once, and
// every result message is built from the record (ResultFromRecord). The
// answer fields of the result message are a copy for relays that still
// read them; a relay should post the record's answer.
//
// A Lifecycle is safe for concurrent use.
type Lifecycle struct {
	p              *Pipeline
	worker, region string
}

// Lifecycle returns the lifecycle of the pipeline's job records, acting as
// worker (recorded in the history of every change it makes) in region.
func (p *Pipeline) Lifecycle(worker, region string) *Lifecycle {
	return &Lifecycle{p: p, worker: worker, region: region}
}

// Errors a Lifecycle method returns (wrapped) when the record is not in a
// state the event applies to. ErrTransition (transitions.go) is returned
// for any other refused change.
var (
	// ErrStale: the message is of an older generation than the record (an
	// operator requeued the job meanwhile).
	ErrStale = errors.New("stale generation")
	// ErrDone: this generation already has an answer, or is held.
	ErrDone = errors.New("already answered or held")
	// ErrPostUnderWay: a post of the same xqueue offer is under way.
	ErrPostUnderWay = errors.New("a post of this offer is under way")
	// ErrPostMayHaveHappened: Claim found a claim it did not make; the
	// record is now ANSWER_UNKNOWN and must not be posted again unless
	// xqueue offers the submission again.
	ErrPostMayHaveHappened = errors.New("an earlier post may have reached xqueue")
)

// move changes r's state for event e, or refuses it. Claim and Release
// keep the state and leave no history entry.
func (l *Lifecycle) move(r *certdv1.JobRecord, e Event, to certdv1.JobState, note string) error {
	if !Allowed(e, r.State, to) {
		return refuse(e, r.Id, r.State, to)
	}
	if e == EventClaim || e == EventRelease {
		return nil
	}
	l.p.Records.transition(r, to, note, l.worker, l.region)
	return nil
}

func (l *Lifecycle) now() *timestamppb.Timestamp { return timestamppb.New(l.p.Records.now()) }

// Submit records a new job as QUEUED and publishes it: one write, whose
// history shows it accepted (with note) and queued. rec
// holds the job's fields; its state and history are set here. If a record
// with that id exists, nothing is written and Submit returns false with
// the existing record (the lasting dedupe); the caller may then Republish
// it or Reoffered it. If the publish fails, the record is put back to
// ACCEPTED and the error returned.
func (l *Lifecycle) Submit(ctx context.Context, rec *certdv1.JobRecord, note string) (bool, *certdv1.JobRecord, error) {
	rec.State = sNone
	if !Allowed(EventAccept, sNone, sQueued) {
		return false, nil, refuse(EventAccept, rec.Id, sNone, sQueued)
	}
	// The history shows both steps, as it did when they were two writes:
	// accepted (with the note), then queued.
	rec.History = nil
	l.p.Records.transition(rec, sAccepted, note, l.worker, l.region)
	l.p.Records.transition(rec, sQueued, "", l.worker, l.region)
	created, existing, err := l.p.Records.create(ctx, rec)
	if err != nil || !created {
		return false, existing, err
	}
	if err := l.publish(ctx, rec); err != nil {
		return true, rec, err
	}
	return true, rec, nil
}

// Reject records a new job whose body cannot be a job together with its
// error answer (RESULT_READY, one write) and publishes the result for the
// relay; it never runs. An existing record is returned untouched with
// false, as by Submit. If only the publish fails, the error is returned
// and the record keeps the answer; Resend sends it again.
func (l *Lifecycle) Reject(ctx context.Context, rec *certdv1.JobRecord, res *certdv1.Result, note string) (bool, *certdv1.JobRecord, error) {
	rec.State = sNone
	if err := l.move(rec, EventAccept, sReady, note); err != nil {
		return false, nil, err
	}
	storeAnswer(rec, res)
	rec.LastError = res.ErrorReason
	created, existing, err := l.p.Records.create(ctx, rec)
	if err != nil || !created {
		return false, existing, err
	}
	return true, rec, l.Resend(ctx, rec)
}

// publish publishes rec's job, and on failure undoes QUEUED to ACCEPTED.
func (l *Lifecycle) publish(ctx context.Context, rec *certdv1.JobRecord) error {
	perr := l.p.PublishJob(ctx, JobFromRecord(rec))
	if perr == nil {
		return nil
	}
	_, err := l.p.Records.modify(context.WithoutCancel(ctx), rec.Id, func(r *certdv1.JobRecord) error {
		if r.Generation != rec.Generation || r.State != sQueued {
			return errNoChange
		}
		r.LastError = "publish failed: " + perr.Error()
		return l.move(r, EventUndo, sAccepted, r.LastError)
	})
	return errors.Join(perr, err)
}

// Republish publishes again the job of a record that may never have been
// published: QUEUED (a crash between recording and publishing) or ACCEPTED
// (recorded by an older bridge, or its publish failed). An ACCEPTED record
// is first moved to QUEUED. Any other state is left alone (nil).
func (l *Lifecycle) Republish(ctx context.Context, rec *certdv1.JobRecord) error {
	switch rec.State {
	case sQueued:
		return l.p.PublishJob(ctx, JobFromRecord(rec))
	case sAccepted:
		cur, err := l.p.Records.modify(ctx, rec.Id, func(r *certdv1.JobRecord) error {
			if r.State != sAccepted || r.Generation != rec.Generation {
				return errNoChange
			}
			return l.move(r, EventQueue, sQueued, "")
		})
		if err != nil {
			return err
		}
		if cur.State != sQueued || cur.Generation != rec.Generation {
			return nil
		}
		return l.publish(ctx, cur)
	}
	return nil
}

// Reoffered records the newest xqueue key of a submission offered again,
// without changing its state, and returns the record.
func (l *Lifecycle) Reoffered(ctx context.Context, id, key string) (*certdv1.JobRecord, error) {
	return l.p.Records.modify(ctx, id, func(r *certdv1.JobRecord) error {
		if r.XqueueKey == key {
			return errNoChange
		}
		r.XqueueKey = key
		return nil
	})
}

// Revoked notes on a record that its certificate's credential was revoked
// (the status list entry is the authority), without changing its state.
// The first revocation's date and reason are kept.
func (l *Lifecycle) Revoked(ctx context.Context, id string, at time.Time, reason string) error {
	_, err := l.p.Records.modify(ctx, id, func(r *certdv1.JobRecord) error {
		if r.RevokedAt != nil {
			return errNoChange
		}
		r.RevokedAt, r.RevokeReason = timestamppb.New(at), reason
		return nil
	})
	return err
}

// Attempt is one run of a job, from Start to Finish, Retry or Hold.
type Attempt struct {
	Job *certdv1.Job
	N   int // the attempt's number, 1-based
	// Record is the job's record as Start last saw it (also on ErrDone).
	Record *certdv1.JobRecord
	rev    uint64 // Record's revision; 0: unknown
}

// NewAttempt describes attempt n of job for Finish, Retry or Hold without
// Start (a job answered without running, or a test).
func NewAttempt(job *certdv1.Job, n int) *Attempt { return &Attempt{Job: job, N: n} }

// update changes the attempt's record, trying first on the copy Start saw.
func (l *Lifecycle) update(ctx context.Context, a *Attempt, fn func(*certdv1.JobRecord) error) (*certdv1.JobRecord, error) {
	known := a.Record
	if a.rev == 0 {
		known = nil
	}
	rec, rev, err := l.p.Records.update(ctx, a.Job.Id, known, a.rev, fn)
	if err == nil {
		a.Record, a.rev = rec, rev
	}
	return rec, err
}

// Start begins an attempt of job. It returns ErrStale for a message of an
// older generation and ErrDone (with the attempt's Record set) when this
// generation has an answer or is held: the delivery is then not run
// (Resend sends a RESULT_READY record's result again, in case it was lost).
//
// delivered is JetStream's delivery count of the message. On a first
// delivery of a job that is waiting (ACCEPTED or QUEUED) the start is not
// written: the attempt is recorded by Finish, Retry or Hold, which saves a
// record write on every job. Any later delivery records the start
// (RUNNING, attempts+1) before running, so that a job that kills its worker
// every time is still counted and held; if the record still says waiting,
// the earlier delivery's unrecorded attempt is counted too (it may have
// crashed its worker; a delivery nak'ed unstarted at shutdown is counted
// as well, an over-count of one).
func (l *Lifecycle) Start(ctx context.Context, job *certdv1.Job, delivered int) (*Attempt, error) {
	a := &Attempt{Job: job}
	check := func(r *certdv1.JobRecord) error {
		if r.Generation > job.Generation {
			return fmt.Errorf("job %s generation %d < %d: %w", job.Id, job.Generation, r.Generation, ErrStale)
		}
		switch r.State {
		case sReady, sAnswered, sUnknown, sDead:
			if r.Generation == job.Generation {
				return fmt.Errorf("job %s is %s: %w", job.Id, r.State, ErrDone)
			}
		}
		return nil
	}
	if delivered <= 1 {
		r, rev, err := l.p.Records.get(ctx, job.Id)
		if err != nil {
			return nil, err
		}
		a.Record, a.rev = r, rev
		if err := check(r); err != nil {
			return a, err
		}
		if (r.State == sAccepted || r.State == sQueued) && r.Generation == job.Generation {
			a.N = int(r.Attempts) + 1
			return a, nil
		}
	}
	var seen *certdv1.JobRecord
	r, rev, err := l.p.Records.update(ctx, job.Id, nil, 0, func(r *certdv1.JobRecord) error {
		seen = r
		if err := check(r); err != nil {
			return err
		}
		if (r.State == sAccepted || r.State == sQueued) && delivered > 1 {
			r.Attempts++ // the earlier delivery that did not record its end
		}
		r.Attempts++
		r.Worker, r.Region = l.worker, l.region
		return l.move(r, EventStart, sRunning, fmt.Sprintf("attempt %d", r.Attempts))
	})
	if err != nil {
		a.Record = seen
		return a, err
	}
	a.Record, a.rev, a.N = r, rev, int(r.Attempts)
	return a, nil
}

// attempted records a finished attempt (started or not) on r.
func (l *Lifecycle) attempted(r *certdv1.JobRecord, attempt int) {
	r.Attempts = max(r.Attempts, uint32(attempt))
	r.Worker, r.Region = l.worker, l.region
}

// Finish stores the answer of attempt a: the record becomes RESULT_READY,
// and then the result is published for the relay. The answer is stored
// once: a record of this generation that has an answer already refuses it
// (ErrTransition). If only the publish fails, the record keeps the answer
// and the error is returned: the job's redelivery sends the result again
// (Resend).
func (l *Lifecycle) Finish(ctx context.Context, a *Attempt, res *certdv1.Result) (*certdv1.JobRecord, error) {
	job := a.Job
	rec, err := l.update(ctx, a, func(r *certdv1.JobRecord) error {
		if r.Generation != job.Generation {
			return fmt.Errorf("job %s generation %d != %d: %w", job.Id, job.Generation, r.Generation, ErrStale)
		}
		note := res.ErrorReason
		if note == "" {
			note = res.DesignNote // a design fallback shows in the history
		}
		if err := l.move(r, EventFinish, sReady, note); err != nil {
			return err
		}
		l.attempted(r, a.N)
		storeAnswer(r, res)
		r.LastError = res.ErrorReason
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, l.Resend(ctx, rec)
}

func storeAnswer(r *certdv1.JobRecord, res *certdv1.Result) {
	r.Answer, r.AnswerOk, r.ErrorReason = res.Answer, res.Ok, res.ErrorReason
	r.Design, r.DesignNote = res.Design, res.DesignNote
	if res.Ok {
		r.DownloadUrl, r.VerifyUrl = res.DownloadUrl, res.VerifyUrl
	}
}

// Resend publishes the result of a RESULT_READY record (again).
func (l *Lifecycle) Resend(ctx context.Context, rec *certdv1.JobRecord) error {
	if rec.State != sReady {
		return nil
	}
	return l.p.PublishResult(ctx, rec.Source, ResultFromRecord(rec))
}

// ResultFromRecord is the result message of a record that has its answer.
func ResultFromRecord(rec *certdv1.JobRecord) *certdv1.Result {
	res := &certdv1.Result{
		JobId: rec.Id, Generation: rec.Generation, Ok: rec.AnswerOk, Answer: rec.Answer,
		ErrorReason: rec.ErrorReason, Worker: rec.Worker, Region: rec.Region,
	}
	if rec.AnswerOk {
		res.DownloadUrl, res.VerifyUrl = rec.DownloadUrl, rec.VerifyUrl
	}
	return res
}

// Retry records that attempt a failed transiently; JetStream redelivers
// the job after the backoff the caller chose.
func (l *Lifecycle) Retry(ctx context.Context, a *Attempt, cause error) error {
	return l.fail(ctx, a, EventRetry, sRetrying, cause)
}

// Hold marks the job of attempt a dead and held for an operator (Requeue
// or Fail).
func (l *Lifecycle) Hold(ctx context.Context, a *Attempt, cause error) error {
	return l.fail(ctx, a, EventHold, sDead, cause)
}

func (l *Lifecycle) fail(ctx context.Context, a *Attempt, e Event, to certdv1.JobState, cause error) error {
	job := a.Job
	_, err := l.update(ctx, a, func(r *certdv1.JobRecord) error {
		if r.Generation != job.Generation {
			return fmt.Errorf("job %s generation %d != %d: %w", job.Id, job.Generation, r.Generation, ErrStale)
		}
		if err := l.move(r, e, to, cause.Error()); err != nil {
			return err
		}
		l.attempted(r, a.N)
		r.LastError = cause.Error()
		if to == sDead {
			r.DeadAt = l.now()
		}
		return nil
	})
	return err
}

// ClaimKind says who claims the post of an answer, which decides what a
// claim found already set means.
type ClaimKind uint8

const (
	// ClaimResult: a relay posting the answer a result message announced
	// (Claim's gen is the message's generation). A claim found set means
	// an earlier post may have reached xqueue: the record becomes
	// ANSWER_UNKNOWN and Claim returns ErrPostMayHaveHappened.
	ClaimResult ClaimKind = iota
	// ClaimReoffer: xqueue has just offered the submission again, so no
	// answer was accepted: an answered record is claimed again, and a
	// claim with the offer's own key is a racing post (ErrPostUnderWay).
	ClaimReoffer
	// ClaimNewerKey: a poster whose own post was refused for its key tries
	// again with the newest key. Any claim found set is another post under
	// way (ErrPostUnderWay): at most one post per job.
	ClaimNewerKey
)

// ErrNoAnswerYet: a result message arrived for a job whose record does
// not hold its answer yet (it was published by a writer that publishes
// before it records). The message is tried again later.
var ErrNoAnswerYet = errors.New("the record holds no answer yet")

// answerWaits checks that a record holds the answer of generation gen,
// waiting to be posted.
func answerWaits(r *certdv1.JobRecord, gen uint32) error {
	switch {
	case r.Generation > gen:
		return fmt.Errorf("job %s generation %d < %d: %w", r.Id, gen, r.Generation, ErrStale)
	case r.State == sReady:
		return nil
	case r.State == sAnswered || r.State == sUnknown || r.State == sDead:
		return fmt.Errorf("job %s is %s: %w", r.Id, r.State, ErrDone)
	}
	return fmt.Errorf("job %s is %s: %w", r.Id, r.State, ErrNoAnswerYet)
}

// Waiting returns the record of a job whose answer of generation gen
// waits to be posted (a relay that posts without claiming, such as the
// callback relay), without writing. ErrStale: the job was requeued since;
// ErrDone: answered or held; ErrNoAnswerYet.
func (l *Lifecycle) Waiting(ctx context.Context, id string, gen uint32) (*certdv1.JobRecord, error) {
	r, err := l.p.Records.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := answerWaits(r, gen); err != nil {
		return nil, err
	}
	return r, nil
}

// Claim claims the post of a record's answer with its newest xqueue key
// (posting_key) and returns the claimed record: the post must use its
// PostingKey and its Answer (the record is the one place the answer
// lives). What a claim found set means depends on kind (see ClaimKind);
// gen is the generation a ClaimResult posts (ErrStale, ErrDone and
// ErrNoAnswerYet as for Waiting). ErrDone also: already answered, for
// every kind but ClaimReoffer.
func (l *Lifecycle) Claim(ctx context.Context, id string, gen uint32, kind ClaimKind) (*certdv1.JobRecord, error) {
	var outcome error
	rec, err := l.p.Records.modify(ctx, id, func(r *certdv1.JobRecord) error {
		outcome = nil
		if kind == ClaimResult {
			if err := answerWaits(r, gen); err != nil {
				return err
			}
		}
		if kind != ClaimReoffer && (r.State == sAnswered || r.State == sUnknown) {
			return fmt.Errorf("job %s is %s: %w", id, r.State, ErrDone)
		}
		switch {
		case kind == ClaimReoffer && r.PostingKey != "" && r.PostingKey == r.XqueueKey,
			kind == ClaimNewerKey && r.PostingKey != "":
			return fmt.Errorf("job %s: %w", id, ErrPostUnderWay)
		case kind == ClaimResult && r.PostingKey != "":
			outcome = fmt.Errorf("job %s: %w", id, ErrPostMayHaveHappened)
			r.PostingKey = ""
			return l.move(r, EventSettle, sUnknown, "an earlier post may have reached xqueue; answered again only if xqueue offers it again")
		}
		if err := l.move(r, EventClaim, r.State, ""); err != nil {
			return err
		}
		r.PostingKey = r.XqueueKey
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, outcome
}

// Settle records the outcome of a post and drops the claim: ANSWERED
// (posted says the answer was delivered, counted in answers_posted),
// ANSWER_UNKNOWN, or DEAD (the receiver refused the answer itself; held).
func (l *Lifecycle) Settle(ctx context.Context, id string, to certdv1.JobState, note string, posted bool) error {
	_, err := l.p.Records.modify(ctx, id, func(r *certdv1.JobRecord) error {
		if err := l.move(r, EventSettle, to, note); err != nil {
			return err
		}
		r.PostingKey = ""
		if posted {
			r.AnswersPosted++
		} else {
			r.LastError = note
		}
		if to == sDead {
			r.DeadAt = l.now()
		}
		return nil
	})
	return err
}

// Release drops the claim made with key used, of a post that certainly
// did not reach the receiver; the state stays. A claim made since by
// another poster (with a newer key) stays.
func (l *Lifecycle) Release(ctx context.Context, id, used, note string) error {
	_, err := l.p.Records.modify(ctx, id, func(r *certdv1.JobRecord) error {
		if err := l.move(r, EventRelease, r.State, note); err != nil {
			return err
		}
		if r.PostingKey == used {
			r.PostingKey = ""
		}
		r.LastError = note
		return nil
	})
	return err
}

// Requeue runs a job again as a new generation with fresh attempts and
// publishes it. allow may refuse (its error is returned as is) after
// seeing the current record. If the publish fails the record goes back to
// its former state, keeping the new generation so that a publish that did
// get through is skipped by consumers.
func (l *Lifecycle) Requeue(ctx context.Context, id, note string, allow func(*certdv1.JobRecord) error) (*certdv1.JobRecord, error) {
	var prev certdv1.JobState
	var prevDead *timestamppb.Timestamp
	rec, err := l.p.Records.modify(ctx, id, func(r *certdv1.JobRecord) error {
		if allow != nil {
			if err := allow(r); err != nil {
				return err
			}
		}
		prev, prevDead = r.State, r.DeadAt
		if err := l.move(r, EventRequeue, sQueued, note); err != nil {
			return err
		}
		r.Generation++
		r.Attempts = 0
		r.DeadAt = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	perr := l.p.PublishJob(ctx, JobFromRecord(rec))
	if perr == nil {
		return rec, nil
	}
	gen := rec.Generation
	_, err = l.p.Records.modify(context.WithoutCancel(ctx), id, func(r *certdv1.JobRecord) error {
		if r.Generation != gen || r.State != sQueued {
			return errNoChange // a consumer took it: the publish got through
		}
		r.DeadAt = prevDead
		r.LastError = "requeue failed: " + perr.Error()
		return l.move(r, EventUndo, prev, r.LastError)
	})
	return nil, errors.Join(fmt.Errorf("publish failed: %w", perr), err)
}

// GiveUp answers a held (DEAD) job now: it moves the record to
// RESULT_READY with the error answer (or, if the job had produced a
// certificate that xqueue refused, that answer), so that of an operator's
// Fail, the reaper and a Requeue only one wins, then publishes the result.
// If publishing fails the job is put back to DEAD. ErrNotHeld: the job is
// no longer held.
func (l *Lifecycle) GiveUp(ctx context.Context, rec *certdv1.JobRecord, reason string) (*certdv1.Result, error) {
	res := FailResult(rec, reason)
	cur, err := l.p.Records.modify(ctx, rec.Id, func(r *certdv1.JobRecord) error {
		if r.State != sDead || r.Generation != rec.Generation {
			return ErrNotHeld
		}
		if err := l.move(r, EventGiveUp, sReady, "given up: "+reason); err != nil {
			return err
		}
		r.Worker, r.Region = l.worker, l.region
		storeAnswer(r, res)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := ResultFromRecord(cur)
	if perr := l.p.PublishResult(ctx, cur.Source, out); perr != nil {
		_, err := l.p.Records.modify(context.WithoutCancel(ctx), rec.Id, func(r *certdv1.JobRecord) error {
			if r.State != sReady || r.Generation != rec.Generation {
				return errNoChange
			}
			return l.move(r, EventUndo, sDead, "giving up failed: "+perr.Error())
		})
		return nil, errors.Join(perr, err)
	}
	return out, nil
}

// Close ends a held (DEAD) job whose answer was made but cannot be
// delivered (its callback kept failing): the record becomes ANSWERED and
// keeps the answer, and nothing is published. ErrNotHeld: the job is no
// longer held; ErrNoAnswerYet: it holds no answer to keep.
func (l *Lifecycle) Close(ctx context.Context, rec *certdv1.JobRecord, note string) error {
	_, err := l.p.Records.modify(ctx, rec.Id, func(r *certdv1.JobRecord) error {
		if r.State != sDead || r.Generation != rec.Generation {
			return ErrNotHeld
		}
		if len(r.Answer) == 0 {
			return fmt.Errorf("job %s: %w", r.Id, ErrNoAnswerYet)
		}
		r.LastError = note
		return l.move(r, EventGiveUp, sAnswered, note)
	})
	return err
}

// Adopt stores the answer a result message carries in a record that holds
// none: the result of a consumer of an older version, which published its
// result before recording it and left storing the answer to the relay.
// A record still waiting or running becomes RESULT_READY (EventFinish); a
// RESULT_READY record without an answer gets it and keeps its state (and
// any claim). A record that holds an answer is left alone. It returns the
// record; ErrStale: the message is of another generation.
func (l *Lifecycle) Adopt(ctx context.Context, res *certdv1.Result) (*certdv1.JobRecord, error) {
	return l.p.Records.modify(ctx, res.JobId, func(r *certdv1.JobRecord) error {
		if r.Generation != res.Generation {
			return fmt.Errorf("job %s generation %d != %d: %w", r.Id, res.Generation, r.Generation, ErrStale)
		}
		if len(r.Answer) > 0 || len(res.Answer) == 0 {
			return errNoChange
		}
		if r.State != sReady {
			if err := l.move(r, EventFinish, sReady, res.ErrorReason); err != nil {
				return err
			}
		}
		storeAnswer(r, res)
		r.LastError = res.ErrorReason
		return nil
	})
}
