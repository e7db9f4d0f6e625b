package pipeline

import (
	"fmt"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Event is something that happens to a job and may change its state. Every
// state change of a job record is one event, made by one Lifecycle method.
type Event uint8

// The events of a job's life, in the order of the happy path first.
const (
	EventAccept  Event = iota + 1 // the record is created (Submit, Reject)
	EventQueue                    // its job message is published (Submit, Republish)
	EventStart                    // an attempt begins (Start)
	EventFinish                   // the answer is stored, once (Finish)
	EventClaim                    // a post of the answer is about to be made (Claim)
	EventSettle                   // the outcome of a post is known (Settle)
	EventRelease                  // a post certainly failed; the claim is dropped (Release)
	EventRetry                    // an attempt failed transiently (Retry)
	EventHold                     // the job waits for an operator (Hold)
	EventRequeue                  // an operator runs it again, as a new generation (Requeue)
	EventGiveUp                   // a held job is answered with an error (GiveUp) or closed (Close)
	EventUndo                     // a publish failed after the record said it was made
	numEvents
)

var eventNames = [...]string{"", "accept", "queue", "start", "finish", "claim", "settle", "release", "retry", "hold", "requeue", "give up", "undo"}

func (e Event) String() string {
	if e > 0 && e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", e)
}

// Short names for the table.
const (
	sNone     = certdv1.JobState_JOB_STATE_UNSPECIFIED // no record yet
	sAccepted = certdv1.JobState_JOB_STATE_ACCEPTED
	sQueued   = certdv1.JobState_JOB_STATE_QUEUED
	sRunning  = certdv1.JobState_JOB_STATE_RUNNING
	sRetrying = certdv1.JobState_JOB_STATE_RETRYING
	sDead     = certdv1.JobState_JOB_STATE_DEAD
	sReady    = certdv1.JobState_JOB_STATE_RESULT_READY
	sAnswered = certdv1.JobState_JOB_STATE_ANSWERED
	sUnknown  = certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN
)

type edge struct{ from, to certdv1.JobState }

// transitions is the whole state machine of a job record: for each event,
// the state changes it may make. Anything not listed is refused with
// ErrTransition. This table is the only place that says which state may
// follow which; Lifecycle checks every write against it.
var transitions = map[Event][]edge{
	// A record is created queued: its publish follows at once (and if it
	// fails, EventUndo puts it back to accepted). A body that cannot be a
	// job is recorded with its error answer instead.
	EventAccept: {{sNone, sQueued}, {sNone, sReady}},
	EventQueue:  {{sAccepted, sQueued}},
	// An attempt starts from the queue, after a transient failure, or again
	// after a worker died holding the job. (A first delivery may also run
	// without recording its start; see Lifecycle.Start.)
	EventStart: {{sAccepted, sRunning}, {sQueued, sRunning}, {sRetrying, sRunning}, {sRunning, sRunning}},
	// The answer is stored once. From accepted: a body that cannot be a
	// job is answered without running; from queued: a first attempt whose
	// start was not recorded.
	EventFinish: {{sAccepted, sReady}, {sQueued, sReady}, {sRunning, sReady}},
	// A post claims the record without changing its state: a first post,
	// or a re-offer by xqueue of an answered job.
	EventClaim:   {{sReady, sReady}, {sAnswered, sAnswered}, {sUnknown, sUnknown}},
	EventRelease: {{sReady, sReady}, {sAnswered, sAnswered}, {sUnknown, sUnknown}},
	EventSettle: {
		{sReady, sAnswered}, {sReady, sUnknown}, {sReady, sDead},
		{sAnswered, sAnswered}, {sAnswered, sUnknown}, {sAnswered, sDead},
		{sUnknown, sAnswered}, {sUnknown, sUnknown}, {sUnknown, sDead},
	},
	EventRetry: {{sAccepted, sRetrying}, {sQueued, sRetrying}, {sRunning, sRetrying}},
	EventHold:  {{sAccepted, sDead}, {sQueued, sDead}, {sRunning, sDead}, {sRetrying, sDead}},
	// Held jobs, and jobs stuck accepted, can be requeued.
	EventRequeue: {{sDead, sQueued}, {sAccepted, sQueued}},
	// A held job is answered with an error now (or, when the answer was
	// made but cannot be delivered, closed with the answer kept).
	EventGiveUp: {{sDead, sReady}, {sDead, sAnswered}},
	// Records are written before their message is published; when the
	// publish fails the record goes back to where it was.
	EventUndo: {{sQueued, sAccepted}, {sQueued, sDead}, {sReady, sDead}},
}

// Events lists every event.
func Events() []Event {
	out := make([]Event, 0, numEvents-1)
	for e := Event(1); e < numEvents; e++ {
		out = append(out, e)
	}
	return out
}

// Allowed reports whether event e may move a record from one state to
// another.
func Allowed(e Event, from, to certdv1.JobState) bool {
	for _, ed := range transitions[e] {
		if ed.from == from && ed.to == to {
			return true
		}
	}
	return false
}

// ErrTransition is returned (wrapped) for a state change the table refuses.
var ErrTransition = fmt.Errorf("state change not allowed")

func refuse(e Event, id string, from, to certdv1.JobState) error {
	return fmt.Errorf("job %s: %s from %s to %s: %w", id, e, stateName(from), stateName(to), ErrTransition)
}

func stateName(s certdv1.JobState) string {
	if s == sNone {
		return "no record"
	}
	return s.String()
}
