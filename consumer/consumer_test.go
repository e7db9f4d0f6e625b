package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func jobBody(t *testing.T, m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// createBody is a create job as the LMS sends it (template_pdf included,
// Python's encoding); extra sets template_pdf, issued_date or designation.
func createBody(t *testing.T, username, name string, extra ...string) string {
	j := lms.CreateJob(username, testenv.Course, "Demonstration Course", name, "Pass", false)
	for i := 0; i+1 < len(extra); i += 2 {
		switch extra[i] {
		case "template_pdf":
			j.TemplatePDF = extra[i+1]
		case "issued_date":
			j.IssuedDate = extra[i+1]
		case "designation":
			j.Designation = extra[i+1]
		default:
			t.Fatalf("createBody: unknown field %s", extra[i])
		}
	}
	return string(j.Body())
}

func answerOf(t *testing.T, cb xqueuetest.Callback) map[string]string {
	t.Helper()
	var m map[string]string
	if err := cb.Decode(&m); err != nil {
		t.Fatalf("callback body %q: %v", cb.Body, err)
	}
	return m
}

// blockingHandler holds the first job it gets until released.
type blockingHandler struct {
	inner   consumer.JobHandler
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingHandler) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.started)
		<-b.release
	}
	return b.inner.Handle(ctx, job)
}

// TestConsumerKilledMidJob: a consumer dies (its NATS connection drops)
// while it holds a job; JetStream redelivers the job to another consumer,
// which completes it once, with the uuids the bridge assigned, and the dead
// consumer's late work changes nothing.
func TestConsumerKilledMidJob(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))

	victim := env.Connect(t)
	bh := &blockingHandler{inner: env.Handler, started: make(chan struct{}), release: make(chan struct{})}
	stopVictim := env.RunConsumer(t, victim, bh)
	id := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	ctx := ctxFor(t)
	select {
	case <-bh.started:
	case <-ctx.Done():
		t.Fatal("the job never reached the first consumer")
	}
	victim.Conn().Close() // the crash: no ack, no nak, no result

	env.RunConsumer(t, nil, nil)
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	close(bh.release) // the dead consumer's handler finishes late
	stopVictim()

	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	a := answerOf(t, cbs[0])
	if a["download_uuid"] != rec.DownloadUuid || a["verify_uuid"] != rec.VerifyUuid {
		t.Errorf("answer uuids %s/%s, record %s/%s", a["download_uuid"], a["verify_uuid"], rec.DownloadUuid, rec.VerifyUuid)
	}
	if rec.Attempts < 2 || rec.State != certdv1.JobState_JOB_STATE_ANSWERED || rec.AnswersPosted != 1 {
		t.Errorf("record: attempts %d, state %s, answers posted %d", rec.Attempts, rec.State, rec.AnswersPosted)
	}
	if n := xs.CallbackCount(id); n != 1 {
		t.Errorf("%d callbacks, want 1", n)
	}
	// Same keys, no orphans: one PDF and one verification folder.
	pdfs, err := env.Store.List(ctx, "downloads/")
	if err != nil || len(pdfs) != 1 || !strings.Contains(pdfs[0], rec.DownloadUuid) {
		t.Fatalf("downloads: %v, %v", pdfs, err)
	}
	pdf, err := env.Store.Get(ctx, pdfs[0])
	if err != nil {
		t.Fatal(err)
	}
	sig, err := env.Store.Get(ctx, "cert/"+rec.VerifyUuid+"/Certificate.pdf.sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.GPGVerify(t, pdf, sig, env.Signer.PublicKey()); err != nil {
		t.Error(err)
	}
}

// failingStore fails every write while broken is set.
type failingStore struct {
	consumer.Store
	broken atomic.Bool
}

var errStorageDown = errors.New("storage is down")

func (f *failingStore) Put(ctx context.Context, key string, data []byte, ct string) error {
	if f.broken.Load() {
		return errStorageDown
	}
	return f.Store.Put(ctx, key, data, ct)
}

// TestTransientFailuresRetriedThenHeld: while storage fails, a job is
// retried with backoff and, after its last attempt, held dead with its last
// error — not answered, since the LMS would not take a success after an
// error.
func TestTransientFailuresRetriedThenHeld(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	fs := &failingStore{Store: env.Store}
	fs.broken.Store(true)
	h := testenv.NewHandler(t, env, fs)
	env.RunConsumer(t, nil, h, consumer.WithMaxAttempts(3))
	id := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	ctx := ctxFor(t)
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_DEAD)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 3 || !strings.Contains(rec.LastError, "storage is down") || rec.DeadAt == nil {
		t.Errorf("dead record: attempts %d, last error %q", rec.Attempts, rec.LastError)
	}
	retrying := 0
	for _, h := range rec.History {
		if h.State == certdv1.JobState_JOB_STATE_RETRYING {
			retrying++
		}
	}
	if retrying != 2 {
		t.Errorf("%d retries recorded, want 2", retrying)
	}
	if n := xs.CallbackCount(id); n != 0 {
		t.Errorf("held job answered %d times", n)
	}
}

// TestPermanentErrorsAnsweredOnceWithoutRetry: input that can never work is
// answered with a specific error at the first attempt.
func TestPermanentErrorsAnsweredOnceWithoutRetry(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)
	cases := map[int64]string{
		xs.Submit(createBody(t, "a", "Jane Doe", "template_pdf", "/etc/passwd")):                                             "design",
		xs.Submit(createBody(t, "b", "Jane Doe", "template_pdf", "../../../etc/passwd")):                                     "design",
		xs.Submit(createBody(t, "c", "Ѐmoji 😀 Person")):                                                                      "U+1F600",
		xs.Submit(createBody(t, "d", "Jane Doe", "issued_date", "2012-13-45")):                                               "issued_date",
		xs.Submit(createBody(t, "e", strings.Repeat("W", 20000))):                                                            "name",
		xs.Submit(jobBody(t, map[string]any{"action": "create", "username": "f", "course_id": "not a course", "name": "N"})): "course",
	}
	ctx := ctxFor(t)
	if _, err := xs.WaitCallbacks(ctx, len(cases)); err != nil {
		t.Fatal(err)
	}
	for id, want := range cases {
		cbs := xs.CallbacksFor(id)
		if len(cbs) != 1 {
			t.Errorf("submission %d: %d callbacks", id, len(cbs))
			continue
		}
		a := answerOf(t, cbs[0])
		if !strings.Contains(a["error_reason"], want) {
			t.Errorf("submission %d: error_reason %q, want it to mention %q", id, a["error_reason"], want)
		}
		rec, err := env.P.Records.Get(ctx, fmt.Sprintf("xq-%d", id))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Attempts > 1 {
			t.Errorf("submission %d tried %d times", id, rec.Attempts)
		}
	}
}

// TestRegenAndRemove: regen deletes the old files and makes new ones;
// remove deletes them and answers with the remove body.
func TestRegenAndRemove(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)
	ctx := ctxFor(t)
	exists := func(key string) bool {
		_, err := env.Store.Get(ctx, key)
		return err == nil
	}
	files := func(a map[string]string) []string {
		return []string{"downloads/" + a["download_uuid"] + "/Certificate.pdf", "cert/" + a["verify_uuid"] + "/Certificate.pdf.sig",
			"cert/" + a["verify_uuid"] + "/valid.html", "cert/" + a["verify_uuid"] + "/verify.html"}
	}

	first := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	a1 := answerOf(t, cbs[0])
	for _, f := range files(a1) {
		if !exists(f) {
			t.Fatalf("%s missing after create", f)
		}
	}
	regen := xs.Submit(jobBody(t, map[string]any{"action": "regen", "username": "jdoe", "course_id": "course-v1:edX+DemoX+Demo_Course",
		"name": "Jane Q. Doe", "delete_download_uuid": a1["download_uuid"], "delete_verify_uuid": a1["verify_uuid"]}))
	if _, err := xs.WaitCallbacks(ctx, 2); err != nil {
		t.Fatal(err)
	}
	a2 := answerOf(t, xs.CallbacksFor(regen)[0])
	if a2["action"] != "regen" || a2["download_uuid"] == a1["download_uuid"] {
		t.Fatalf("regen answer %v", a2)
	}
	for _, f := range files(a1) {
		if exists(f) {
			t.Errorf("%s still there after regen", f)
		}
	}
	for _, f := range files(a2) {
		if !exists(f) {
			t.Errorf("%s missing after regen", f)
		}
	}
	remove := xs.Submit(jobBody(t, map[string]any{"action": "remove", "username": "jdoe", "course_id": "course-v1:edX+DemoX+Demo_Course",
		"delete_download_uuid": a2["download_uuid"], "delete_verify_uuid": a2["verify_uuid"]}))
	if _, err := xs.WaitCallbacks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	a3 := answerOf(t, xs.CallbacksFor(remove)[0])
	if a3["action"] != "remove" || a3["username"] != "jdoe" || a3["error"] != "" {
		t.Errorf("remove answer %v", a3)
	}
	for _, f := range files(a2) {
		if exists(f) {
			t.Errorf("%s still there after remove", f)
		}
	}
	if n := xs.CallbackCount(first); n != 1 {
		t.Errorf("create answered %d times", n)
	}
}

// TestHeldJobAnsweredAfterGrace: a dead job nobody requeues or fails is
// answered with an error once the hold grace period has passed.
func TestHeldJobAnsweredAfterGrace(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq), bridge.WithHoldGrace(200*time.Millisecond), bridge.WithReapInterval(50*time.Millisecond))
	fs := &failingStore{Store: env.Store}
	fs.broken.Store(true)
	env.RunConsumer(t, nil, testenv.NewHandler(t, env, fs), consumer.WithMaxAttempts(1))
	id := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	ctx := ctxFor(t)
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := answerOf(t, cbs[0])
	if cbs[0].SubmissionID != id || !strings.Contains(a["error_reason"], "gave up after holding the job") || !strings.Contains(a["error_reason"], "storage is down") {
		t.Errorf("answer %v", a)
	}
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	sawDead := false
	for _, h := range rec.History {
		sawDead = sawDead || h.State == certdv1.JobState_JOB_STATE_DEAD
	}
	if !sawDead || rec.State != certdv1.JobState_JOB_STATE_ANSWERED || rec.AnswerOk {
		t.Errorf("record state %s, answer ok %v, was dead %v", rec.State, rec.AnswerOk, sawDead)
	}
}
