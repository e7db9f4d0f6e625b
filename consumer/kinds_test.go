package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/failure"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// panicOnce panics on the first job it is given (as a renderer bug
// meeting a hostile name would), then does the real work.
type panicOnce struct {
	inner  consumer.JobHandler
	panics atomic.Int32
}

func (p *panicOnce) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	if p.panics.Add(1) == 1 {
		var glyphs []int
		_ = glyphs[len(job.Id)] // index out of range
	}
	return p.inner.Handle(ctx, job)
}

// TestPanicIsRetriedAndOthersServed: a panic while working on a job does
// not take the process down: that job is retried (the panic recorded as
// its error) and answered, and the next jobs are served by the same
// consumer.
func TestPanicIsRetriedAndOthersServed(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, &panicOnce{inner: env.Handler})
	first := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	ctx := ctxFor(t)
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", first), certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 2 || !rec.AnswerOk {
		t.Errorf("record: attempts %d, ok %v; want answered on the second attempt", rec.Attempts, rec.AnswerOk)
	}
	sawPanic := false
	for _, h := range rec.History {
		sawPanic = sawPanic || (h.State == certdv1.JobState_JOB_STATE_RETRYING && strings.Contains(h.Note, "panic"))
	}
	if !sawPanic {
		t.Errorf("the panic is not in the job's history: %v", rec.History)
	}
	second := xs.Submit(createBody(t, "asmith", "Ann Smith"))
	if _, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", second), certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
		t.Fatal(err)
	}
}

// kindHandler fails every job with err.
type kindHandler struct{ err error }

func (k kindHandler) Handle(context.Context, *certdv1.Job) (*certdv1.Result, error) {
	return nil, k.err
}

// TestKindsDecideTheOutcome: an Invalid failure is answered with an error
// at once, a Held one is held for an operator at once, without retries.
func TestKindsDecideTheOutcome(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	ctx := ctxFor(t)

	stop := env.RunConsumer(t, nil, kindHandler{fmt.Errorf("store x: %w", storage.ErrInvalidKey)}, consumer.WithMaxAttempts(5))
	held := xs.Submit(createBody(t, "h", "Held Person"))
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", held), certdv1.JobState_JOB_STATE_DEAD)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 1 {
		t.Errorf("held after %d attempts, want 1 (no retry)", rec.Attempts)
	}
	stop()

	env.RunConsumer(t, nil, kindHandler{failure.E("check", failure.Invalid, fmt.Errorf("name is not drawable"))})
	bad := xs.Submit(createBody(t, "i", "Invalid Person"))
	rec, err = testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", bad), certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 1 || rec.AnswerOk || !strings.Contains(rec.ErrorReason, "not drawable") {
		t.Errorf("record: attempts %d, ok %v, reason %q", rec.Attempts, rec.AnswerOk, rec.ErrorReason)
	}
	cbs, err := xs.WaitCallbacks(ctx, 1) // the held job has none
	if err != nil {
		t.Fatal(err)
	}
	a := answerOf(t, cbs[0])
	if !strings.Contains(a["error_reason"], "not drawable") {
		t.Errorf("answer %v", a)
	}
}

// TestAnswerRecordedButNotPublishedIsSent: a consumer that crashed after
// recording a job's answer and before publishing its result leaves the
// job message in the stream; the next delivery sends the stored answer
// instead of running the job again, and the LMS gets it once.
func TestAnswerRecordedButNotPublishedIsSent(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	ctx := ctxFor(t)
	id := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	jobID := fmt.Sprintf("xq-%d", id)
	if _, err := testenv.WaitState(ctx, env, jobID, certdv1.JobState_JOB_STATE_QUEUED); err != nil {
		t.Fatal(err)
	}
	// The crash: the answer is in the record, no result was published.
	stored := []byte(`{"action":"create","stored":"yes"}`)
	kv, err := pipelinetest.Bucket(ctx, env.P.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipelinetest.Change(ctx, kv, jobID, func(r *certdv1.JobRecord) {
		r.Answer, r.AnswerOk = stored, true
		pipelinetest.SetState(r, certdv1.JobState_JOB_STATE_RESULT_READY, "", "crashed-worker")
	}); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	env.RunConsumer(t, nil, countingHandler{env.Handler, &runs})
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a := answerOf(t, cbs[0]); a["stored"] != "yes" {
		t.Errorf("posted %s, want the stored answer", cbs[0].Body)
	}
	if _, err := testenv.WaitState(ctx, env, jobID, certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 0 {
		t.Errorf("the job ran %d times after its answer was recorded", n)
	}
}

type countingHandler struct {
	inner consumer.JobHandler
	runs  *atomic.Int32
}

func (c countingHandler) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	c.runs.Add(1)
	return c.inner.Handle(ctx, job)
}
