package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

var allStates = func() []certdv1.JobState {
	var out []certdv1.JobState
	for s := range certdv1.JobState_name {
		out = append(out, certdv1.JobState(s))
	}
	return out
}()

// apply makes event e happen, through its Lifecycle method, to a record in
// state from (UNSPECIFIED: no record), aiming at state to where the method
// takes a target. It reports whether the method wrote a change that left
// the record in state to.
func apply(t *testing.T, ctx context.Context, p *pipeline.Pipeline, l *pipeline.Lifecycle, e pipeline.Event, from, to certdv1.JobState, id string) bool {
	t.Helper()
	rec := &certdv1.JobRecord{Id: id, Source: certdv1.Source_SOURCE_XQUEUE, Action: certdv1.Action_ACTION_CREATE,
		State: from, XqueueKey: "key-1", Answer: []byte(`{}`), DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID()}
	before := 0
	if from != certdv1.JobState_JOB_STATE_UNSPECIFIED {
		if _, _, err := p.Records.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		before = 1
	}
	job := pipeline.JobFromRecord(rec)
	res := &certdv1.Result{JobId: id, Ok: true, Answer: []byte(`{}`)}
	var err error
	switch e {
	case pipeline.EventAccept:
		var created bool
		if to == certdv1.JobState_JOB_STATE_RESULT_READY {
			created, _, err = l.Reject(ctx, rec, &certdv1.Result{JobId: id, Answer: []byte(`{}`), ErrorReason: "bad"}, "test")
		} else {
			created, _, err = l.Submit(ctx, rec, "test")
		}
		if err == nil && !created {
			return false // the record exists: nothing was written
		}
	case pipeline.EventQueue:
		err = l.Republish(ctx, rec)
	case pipeline.EventStart:
		_, err = l.Start(ctx, job, 2)
	case pipeline.EventFinish:
		_, err = l.Finish(ctx, pipeline.NewAttempt(job, 1), res)
	case pipeline.EventClaim:
		kind := pipeline.ClaimResult
		if from == certdv1.JobState_JOB_STATE_ANSWERED || from == certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN {
			kind = pipeline.ClaimReoffer
		}
		_, err = l.Claim(ctx, id, rec.Generation, kind)
	case pipeline.EventSettle:
		err = l.Settle(ctx, id, to, "test", true)
	case pipeline.EventRelease:
		err = l.Release(ctx, id, "", "test")
	case pipeline.EventRetry:
		err = l.Retry(ctx, pipeline.NewAttempt(job, 1), errors.New("test"))
	case pipeline.EventHold:
		err = l.Hold(ctx, pipeline.NewAttempt(job, 1), errors.New("test"))
	case pipeline.EventRequeue:
		_, err = l.Requeue(ctx, id, "test", nil)
	case pipeline.EventGiveUp:
		if to == certdv1.JobState_JOB_STATE_ANSWERED {
			err = l.Close(ctx, rec, "test")
		} else {
			_, err = l.GiveUp(ctx, rec, "test")
		}
	case pipeline.EventUndo:
		// Undo happens only inside a method whose publish failed; its rows
		// are checked by TestUndoRows.
		return pipeline.Allowed(e, from, to)
	default:
		t.Fatalf("event %v has no method", e)
	}
	got, gerr := p.Records.Get(ctx, id)
	if gerr != nil {
		return false
	}
	wrote := len(got.History) > before || got.PostingKey != "" || got.LastError == "test"
	if err != nil && !errors.Is(err, pipeline.ErrTransition) && !errors.Is(err, pipeline.ErrDone) &&
		!errors.Is(err, pipeline.ErrNotHeld) && !errors.Is(err, pipeline.ErrPostMayHaveHappened) &&
		!errors.Is(err, pipeline.ErrNoAnswerYet) {
		t.Fatalf("%v from %v: unexpected error %v", e, from, err)
	}
	return err == nil && wrote && got.State == to
}

// TestLifecycleFollowsTheTable walks every event from every state to every
// state through the Lifecycle methods on a real bucket: a change happens
// exactly when the transitions table lists it, and every listed change is
// one a method makes.
func TestLifecycleFollowsTheTable(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	l := p.Lifecycle("test-worker", "test-region")
	n := 0
	for _, e := range pipeline.Events() {
		for _, from := range allStates {
			for _, to := range allStates {
				n++
				id := fmt.Sprintf("t-%d", n)
				want := pipeline.Allowed(e, from, to)
				if got := apply(t, ctx, p, l, e, from, to, id); got != want {
					t.Errorf("%v: %v -> %v: changed %v, table says %v", e, from, to, got, want)
				}
			}
		}
	}
}

// TestEveryStateHasAWayOn: each state is reached by some event and left by
// some event, so the table has no dead ends and no orphans.
func TestEveryStateHasAWayOn(t *testing.T) {
	for _, s := range allStates {
		in, out := false, false
		for _, e := range pipeline.Events() {
			for _, o := range allStates {
				in = in || pipeline.Allowed(e, o, s)
				out = out || pipeline.Allowed(e, s, o)
			}
		}
		if s != certdv1.JobState_JOB_STATE_UNSPECIFIED && !in {
			t.Errorf("%v is never reached", s)
		}
		if !out {
			t.Errorf("%v has no way on", s)
		}
	}
}

// TestTableIsTheDocumentedMachine pins the table: a change to the state
// machine must change this list too, in review.
func TestTableIsTheDocumentedMachine(t *testing.T) {
	var got strings.Builder
	for _, e := range pipeline.Events() {
		for _, from := range allStatesSorted() {
			for _, to := range allStatesSorted() {
				if pipeline.Allowed(e, from, to) {
					fmt.Fprintf(&got, "%s: %s -> %s\n", e, short(from), short(to))
				}
			}
		}
	}
	if got.String() != documentedMachine {
		t.Errorf("transitions table changed; got:\n%s", got.String())
	}
}

func allStatesSorted() []certdv1.JobState {
	var out []certdv1.JobState
	for s := certdv1.JobState(0); int(s) < len(certdv1.JobState_name); s++ {
		out = append(out, s)
	}
	return out
}

func short(s certdv1.JobState) string {
	if s == certdv1.JobState_JOB_STATE_UNSPECIFIED {
		return "none"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATE_"))
}

const documentedMachine = `accept: none -> queued
accept: none -> result_ready
queue: accepted -> queued
start: accepted -> running
start: queued -> running
start: running -> running
start: retrying -> running
finish: accepted -> result_ready
finish: queued -> result_ready
finish: running -> result_ready
claim: result_ready -> result_ready
claim: answered -> answered
claim: answer_unknown -> answer_unknown
settle: result_ready -> dead
settle: result_ready -> answered
settle: result_ready -> answer_unknown
settle: answered -> dead
settle: answered -> answered
settle: answered -> answer_unknown
settle: answer_unknown -> dead
settle: answer_unknown -> answered
settle: answer_unknown -> answer_unknown
release: result_ready -> result_ready
release: answered -> answered
release: answer_unknown -> answer_unknown
retry: accepted -> retrying
retry: queued -> retrying
retry: running -> retrying
hold: accepted -> dead
hold: queued -> dead
hold: running -> dead
hold: retrying -> dead
requeue: accepted -> queued
requeue: dead -> queued
give up: dead -> result_ready
give up: dead -> answered
undo: queued -> accepted
undo: queued -> dead
undo: result_ready -> dead
`

// TestHappyPathWrites: through the Lifecycle, an xqueue job costs four
// record writes from pull to recorded answer (submit, finish, claim,
// settle; a first delivery does not write its start), and the answer is
// stored once and read back from the record.
func TestHappyPathWrites(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	kv, err := p.JS.KeyValue(ctx, pipeline.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	counter := &pipelinetest.CountingKV{KeyValue: kv}
	p.Records = pipeline.NewRecords(counter)
	l := p.Lifecycle("w", "r")
	rec := &certdv1.JobRecord{Id: "xq-1", Source: certdv1.Source_SOURCE_XQUEUE, Action: certdv1.Action_ACTION_CREATE,
		XqueueKey: "k1", DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID()}
	if created, _, err := l.Submit(ctx, rec, "pulled"); err != nil || !created {
		t.Fatalf("submit: %v %v", created, err)
	}
	job := pipeline.JobFromRecord(rec)
	a, err := l.Start(ctx, job, 1)
	if err != nil || a.N != 1 {
		t.Fatalf("start: %v", err)
	}
	answer := []byte(`{"action":"create"}`)
	if _, err := l.Finish(ctx, a, &certdv1.Result{JobId: job.Id, Ok: true, Answer: answer}); err != nil {
		t.Fatal(err)
	}
	claimed, err := l.Claim(ctx, job.Id, job.Generation, pipeline.ClaimResult)
	if err != nil || claimed.PostingKey != "k1" || string(claimed.Answer) != string(answer) {
		t.Fatalf("claim: %v, key %q, answer %q", err, claimed.GetPostingKey(), claimed.GetAnswer())
	}
	if err := l.Settle(ctx, job.Id, certdv1.JobState_JOB_STATE_ANSWERED, "answered", true); err != nil {
		t.Fatal(err)
	}
	if n := counter.Writes.Load(); n != 4 {
		t.Errorf("%d record writes, want 4", n)
	}
	// Reads: start, claim, settle; finish writes on the copy start read.
	if n := counter.Reads.Load(); n != 3 {
		t.Errorf("%d record reads, want 3", n)
	}
	got, err := p.Records.Get(ctx, job.Id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != certdv1.JobState_JOB_STATE_ANSWERED || got.Attempts != 1 || got.AnswersPosted != 1 || got.PostingKey != "" {
		t.Errorf("record: %s, attempts %d, posted %d, claim %q", got.State, got.Attempts, got.AnswersPosted, got.PostingKey)
	}
	// A second answer for the same generation is refused: stored once.
	if _, err := l.Finish(ctx, a, &certdv1.Result{JobId: job.Id, Ok: false}); !errors.Is(err, pipeline.ErrTransition) {
		t.Errorf("second finish: %v, want ErrTransition", err)
	}
}

// TestClaimsOfOnePost: a relay whose post was refused for its key drops
// only its own claim, so a post the intake started meanwhile with the
// newer key keeps its claim, and the relay's retry with the newer key
// gives way to it: one post per job at a time.
func TestClaimsOfOnePost(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	l := p.Lifecycle("w", "r")
	rec := &certdv1.JobRecord{Id: "xq-9", Source: certdv1.Source_SOURCE_XQUEUE, Action: certdv1.Action_ACTION_CREATE,
		XqueueKey: "k1", DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID()}
	if _, _, err := l.Submit(ctx, rec, "pulled"); err != nil {
		t.Fatal(err)
	}
	job := pipeline.JobFromRecord(rec)
	if _, err := l.Finish(ctx, pipeline.NewAttempt(job, 1), &certdv1.Result{JobId: job.Id, Ok: true, Answer: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	relay, err := l.Claim(ctx, job.Id, job.Generation, pipeline.ClaimResult)
	if err != nil || relay.PostingKey != "k1" {
		t.Fatalf("relay claim: %v %q", err, relay.GetPostingKey())
	}
	// xqueue offers the submission again with k2; the intake posts it.
	if _, err := l.Reoffered(ctx, job.Id, "k2"); err != nil {
		t.Fatal(err)
	}
	intake, err := l.Claim(ctx, job.Id, 0, pipeline.ClaimReoffer)
	if err != nil || intake.PostingKey != "k2" {
		t.Fatalf("re-offer claim: %v %q", err, intake.GetPostingKey())
	}
	if _, err := l.Claim(ctx, job.Id, 0, pipeline.ClaimReoffer); !errors.Is(err, pipeline.ErrPostUnderWay) {
		t.Errorf("second re-offer claim: %v, want ErrPostUnderWay", err)
	}
	// The relay's k1 post is refused: it releases its own claim only.
	if err := l.Release(ctx, job.Id, "k1", "incorrect key"); err != nil {
		t.Fatal(err)
	}
	got, err := p.Records.Get(ctx, job.Id)
	if err != nil || got.PostingKey != "k2" {
		t.Fatalf("after the relay's release: claim %q (%v), want the intake's k2", got.GetPostingKey(), err)
	}
	if _, err := l.Claim(ctx, job.Id, job.Generation, pipeline.ClaimNewerKey); !errors.Is(err, pipeline.ErrPostUnderWay) {
		t.Errorf("relay retry with the newer key: %v, want ErrPostUnderWay", err)
	}
	// A result redelivered while a claim is set does not post again.
	if _, err := l.Claim(ctx, job.Id, job.Generation, pipeline.ClaimResult); !errors.Is(err, pipeline.ErrPostMayHaveHappened) {
		t.Errorf("redelivered result: %v, want ErrPostMayHaveHappened", err)
	}
}

// TestAdoptStoresAnAnswerOnce: the answer of a result message is stored
// in a record that has none (moving a running record to RESULT_READY),
// and never replaces an answer the record holds.
func TestAdoptStoresAnAnswerOnce(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	l := p.Lifecycle("w", "r")
	rec := &certdv1.JobRecord{Id: "xq-10", State: certdv1.JobState_JOB_STATE_RUNNING}
	if _, _, err := p.Records.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := l.Adopt(ctx, &certdv1.Result{JobId: rec.Id, Ok: true, Answer: []byte(`{"a":1}`)})
	if err != nil || got.State != certdv1.JobState_JOB_STATE_RESULT_READY || string(got.Answer) != `{"a":1}` {
		t.Fatalf("adopt: %v, %v %q", err, got.GetState(), got.GetAnswer())
	}
	got, err = l.Adopt(ctx, &certdv1.Result{JobId: rec.Id, Ok: true, Answer: []byte(`{"a":2}`)})
	if err != nil || string(got.Answer) != `{"a":1}` {
		t.Errorf("second adopt: %v, answer %q, want the first kept", err, got.GetAnswer())
	}
	if _, err := l.Adopt(ctx, &certdv1.Result{JobId: rec.Id, Generation: 1, Answer: []byte(`{}`)}); !errors.Is(err, pipeline.ErrStale) {
		t.Errorf("adopt of another generation: %v, want ErrStale", err)
	}
}
