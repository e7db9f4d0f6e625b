package bridge_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// TestFaultXqueueErrorsAndDroppedSessions (fault 3): xqueue answers 5xx to
// a share of requests (some after doing the work, so the client cannot
// know the outcome), drops answers and loses every session twice during
// the run. Each submission still gets exactly one LMS callback.
func TestFaultXqueueErrorsAndDroppedSessions(t *testing.T) {
	env, xs, xq := setup(t, xqueuetest.WithLease(time.Second))
	xs.Inject(xqueuetest.Fault{Status: http.StatusBadGateway, Every: 5})
	xs.Inject(xqueuetest.Fault{Endpoint: "get_submission", Status: http.StatusInternalServerError, Every: 4, AfterHandling: true})
	xs.Inject(xqueuetest.Fault{Endpoint: "put_result", Status: http.StatusInternalServerError, Every: 3})
	xs.Inject(xqueuetest.Fault{Endpoint: "put_result", Status: http.StatusGatewayTimeout, Every: 4, AfterHandling: true})
	xs.Inject(xqueuetest.Fault{Endpoint: "get_queuelen", Drop: true, Every: 6})
	env.RunConsumer(t, nil, nil)
	env.RunBridge(t, bridge.WithXQueue(xq), bridge.WithLease(time.Second))
	ids := submitN(t, xs, "flaky", 16)
	ctx := waitCtx(t)
	for _, n := range []int{4, 9} {
		if _, err := xs.WaitCallbacks(ctx, n); err != nil {
			t.Fatal(err)
		}
		xs.DropSessions()
	}
	checkExactlyOnce(t, ctx, env, xs, ids)
	if st := xs.Stats(); st.FaultsApplied == 0 || st.Logins < 3 {
		t.Errorf("faults applied %d, logins %d: the faults did not happen", st.FaultsApplied, st.Logins)
	}
}

// TestFaultXqueueDown (fault 4): xqueue goes away while jobs are in the
// pipeline; the answers wait in JetStream and are posted when it returns.
// In the second run the leases lapse during the outage, so the stored keys
// are stale: xqueue offers the submissions again and they are answered
// with the new keys, once each.
func TestFaultXqueueDown(t *testing.T) {
	for _, lapse := range []bool{false, true} {
		t.Run(map[bool]string{false: "leases kept", true: "leases lapse"}[lapse], func(t *testing.T) {
			env, xs, xq := setup(t)
			env.RunConsumer(t, nil, nil)
			env.RunBridge(t, bridge.WithXQueue(xq))
			ctx := waitCtx(t)
			ids := submitN(t, xs, "down", 10)
			// Down once every submission is pulled: the answers are still
			// to come.
			if _, err := xs.WaitStats(ctx, func(st xqueuetest.Stats) bool { return st.Pulls >= len(ids) }); err != nil {
				t.Fatal(err)
			}
			xs.Down()
			if n := len(xs.Callbacks()); n == len(ids) {
				t.Fatal("every answer was posted before xqueue went down: the outage tested nothing")
			}
			// Every answer is stored and waits (relay posts fail meanwhile).
			updates, err := env.P.Records.Watch(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			waiting := map[string]bool{}
			for rec := range updates {
				if rec.State == certdv1.JobState_JOB_STATE_RESULT_READY || rec.State == certdv1.JobState_JOB_STATE_ANSWERED {
					waiting[rec.Id] = true
				}
				if len(waiting) == len(ids) {
					break
				}
			}
			if lapse {
				xs.ExpireLeases()
			}
			if err := xs.Up(); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, ctx, env, xs, ids)
			if lapse {
				for _, id := range ids {
					sub, _ := xs.Submission(id)
					cb := xs.CallbacksFor(id)
					if len(cb) == 1 && sub.Pulls > 1 && cb[0].Key != sub.Key {
						t.Errorf("submission %d answered with key %s, not its newest %s", id, cb[0].Key, sub.Key)
					}
				}
			}
		})
	}
}

// TestFaultLeaseShorterThanWork (fault 6): jobs take longer than xqueue's
// lease, so queued and running jobs are offered again with new keys; each
// is still answered once, with the newest key.
func TestFaultLeaseShorterThanWork(t *testing.T) {
	const lease = time.Second
	env, xs, xq := setup(t, xqueuetest.WithLease(lease))
	env.RunConsumer(t, nil, slowHandler{h: env.Handler, d: 400 * time.Millisecond})
	env.RunBridge(t, bridge.WithXQueue(xq), bridge.WithLease(lease))
	ids := submitN(t, xs, "lease", 8)
	checkExactlyOnce(t, waitCtx(t), env, xs, ids)
	reoffered := 0
	for _, id := range ids {
		if sub, _ := xs.Submission(id); sub.Pulls > 1 {
			reoffered++
		}
	}
	if reoffered == 0 {
		t.Error("no submission was offered again: the lease did not lapse during the work")
	}
	t.Logf("%d of %d submissions offered again during the work", reoffered, len(ids))
}

// TestFaultSlowLMS (fault 7): xqueue's put_result waits for a slow LMS
// before it answers (about 25 s in production; scaled to 3 s here, which
// changes nothing for the client as long as its timeout is well above:
// it is the default 60 s). No put_result is retried and no LMS callback
// is duplicated.
func TestFaultSlowLMS(t *testing.T) {
	if xqueue.DefaultResultTimeout < 60*time.Second {
		t.Fatalf("put_result timeout %v: must stay well above xqueue's ~25 s LMS retries", xqueue.DefaultResultTimeout)
	}
	env, xs, xq := setup(t, xqueuetest.WithLMSLatency(3*time.Second))
	env.RunConsumer(t, nil, nil)
	env.RunBridge(t, bridge.WithXQueue(xq))
	ids := submitN(t, xs, "slow", 6)
	checkExactlyOnce(t, waitCtx(t), env, xs, ids)
	st := xs.Stats()
	if st.PutResults != len(ids) {
		t.Errorf("%d put_results for %d submissions: a slow answer was retried", st.PutResults, len(ids))
	}
	// A slow LMS holds one xqueue worker per put_result: the bridge must
	// leave xqueue workers free for pulls and for xqueue's other users.
	if st.MaxPutResultsInFlight > 2 {
		t.Errorf("%d put_results at once against a slow LMS, want at most 2", st.MaxPutResultsInFlight)
	}
}

// TestTooLargeSubmissionAnsweredOnce: a submission whose reply is too large
// to read is answered once with an error (its header recovered from the
// start of the reply) instead of being offered forever.
func TestTooLargeSubmissionAnsweredOnce(t *testing.T) {
	env, xs, _ := setup(t, xqueuetest.WithLease(500*time.Millisecond))
	xq, err := xqueue.New(xqueue.Config{BaseURL: xs.URL(), Username: testenv.XQueueUser, Password: testenv.XQueuePassword,
		Logger: env.Log, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, MaxReplyBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	env.RunConsumer(t, nil, nil)
	env.RunBridge(t, bridge.WithXQueue(xq))
	// In the LMS's key order: the username comes before the long name.
	id := xs.Submit(`{"action": "create", "username": "bigname", "course_id": "course-v1:edX+DemoX+Demo_Course", "name": "` +
		strings.Repeat("Jane ", 8<<10) + `", "template_pdf": "certificate-template-edX-DemoX.pdf"}`)
	ok := submitN(t, xs, "fine", 2)
	ctx := waitCtx(t)
	checkExactlyOnce(t, ctx, env, xs, ok)
	if err := xs.WaitRetired(ctx, id); err != nil {
		t.Fatal(err)
	}
	cbs := xs.CallbacksFor(id)
	if len(cbs) != 1 {
		t.Fatalf("%d callbacks for the too-large submission, want 1", len(cbs))
	}
	a := decode(t, cbs[0])
	if a.Error == "" || !strings.Contains(a.ErrorReason, "larger than") || a.Username != "bigname" {
		t.Errorf("answer %+v, want an error naming the size limit, for bigname", a)
	}
}

// TestRefusedAnswerPostedAtOnceWhenOfferedAgain: an answer refused for its
// key ("Incorrect key for submission": another pull saved a newer key)
// waits; when xqueue offers the submission again the bridge posts it at
// once with the new key, and only once.
func TestRefusedAnswerPostedAtOnceWhenOfferedAgain(t *testing.T) {
	env, xs, xq := setup(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	ctx := waitCtx(t)
	id := xs.Submit(body(t, create("jdoe", "Jane Doe")))
	if _, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_QUEUED); err != nil {
		t.Fatal(err)
	}
	if _, err := xs.Steal(id); err != nil { // a racing pull saved its key last
		t.Fatal(err)
	}
	env.RunConsumer(t, nil, nil)
	if _, err := xs.WaitStats(ctx, func(st xqueuetest.Stats) bool { return st.Rejected >= 1 }); err != nil {
		t.Fatal(err)
	}
	if n := xs.CallbackCount(id); n != 0 {
		t.Fatalf("%d callbacks after a refused post", n)
	}
	xs.ExpireLeases() // xqueue offers it again; the bridge pulls the new key
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := xs.Submission(id)
	if cbs[0].Key != sub.Key {
		t.Errorf("answered with key %s, want the newest %s", cbs[0].Key, sub.Key)
	}
	checkExactlyOnce(t, ctx, env, xs, []int64{id})
}

// TestLostRetirementAnsweredAgainWithNewestKey: xqueue loses a retirement
// (a late pull's save un-retires an answered submission) and offers it
// again: the bridge answers again at once from the stored result, with
// the same uuids and the newest key, so that xqueue stops offering it.
func TestLostRetirementAnsweredAgainWithNewestKey(t *testing.T) {
	env, xs, xq := setup(t)
	env.RunConsumer(t, nil, nil)
	env.RunBridge(t, bridge.WithXQueue(xq))
	ctx := waitCtx(t)
	id := xs.Submit(body(t, create("jdoe", "Jane Doe")))
	checkExactlyOnce(t, ctx, env, xs, []int64{id})
	if _, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
		t.Fatal(err)
	}
	if err := xs.Reoffer(id); err != nil { // what a late save does
		t.Fatal(err)
	}
	cbs, err := xs.WaitCallbacks(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := xs.WaitRetired(ctx, id); err != nil {
		t.Fatal(err)
	}
	sub, _ := xs.Submission(id)
	first, second := decode(t, cbs[0]), decode(t, cbs[1])
	if second.DownloadUUID != first.DownloadUUID || second.VerifyUUID != first.VerifyUUID {
		t.Errorf("answered again with other uuids: %+v then %+v", first, second)
	}
	if cbs[1].Key != sub.Key || cbs[1].Key == cbs[0].Key {
		t.Errorf("answered again with key %s, want the newest %s", cbs[1].Key, sub.Key)
	}
	// The record counts both posts once the second is recorded.
	updates, err := env.P.Records.Watch(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for rec := range updates {
		if rec.SubmissionId == id && rec.AnswersPosted == 2 && rec.State == certdv1.JobState_JOB_STATE_ANSWERED {
			return
		}
	}
	t.Errorf("the record never counted 2 answers posted: %v", ctx.Err())
}

// TestStaleClaimDoesNotBlockAnswer: a bridge claimed the post of a waiting
// answer and died before posting (its result message already settled), so
// the record is RESULT_READY with a claim nobody will settle. The next
// offer is left alone (a post with the previous key may still be under
// way inside xqueue), but the one after it is answered at once, once,
// with the newest key: the dead claim does not leave the submission
// offered forever.
func TestStaleClaimDoesNotBlockAnswer(t *testing.T) {
	env, xs, xq := setup(t)
	ctx := waitCtx(t)
	id := xs.Submit(body(t, create("jdoe", "Jane Doe")))
	job := fmt.Sprintf("xq-%d", id)
	kv, err := pipelinetest.Bucket(ctx, env.P.Conn())
	if err != nil {
		t.Fatal(err)
	}
	rec := &certdv1.JobRecord{
		Id: job, Source: certdv1.Source_SOURCE_XQUEUE, Action: certdv1.Action_ACTION_CREATE,
		SubmissionId: id, XqueueKey: "k1", PostingKey: "k1",
		Username: "jdoe", CourseId: "course-v1:edX+DemoX+Demo_Course",
		Answer: []byte(`{"action": "create", "username": "jdoe"}`), AnswerOk: true,
	}
	pipelinetest.SetState(rec, certdv1.JobState_JOB_STATE_RESULT_READY, "finished", "test")
	if err := pipelinetest.Put(ctx, kv, rec); err != nil {
		t.Fatal(err)
	}
	env.RunBridge(t, bridge.WithXQueue(xq))
	// The first offer only refreshes the key.
	if err := waitKey(ctx, env, job, func(k string) bool { return k != "k1" }); err != nil {
		t.Fatal(err)
	}
	xs.ExpireLeases() // offered again
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := xs.WaitRetired(ctx, id); err != nil {
		t.Fatal(err)
	}
	sub, _ := xs.Submission(id)
	if cbs[0].Key != sub.Key || cbs[0].Body != string(rec.Answer) {
		t.Errorf("answered %+v, want the stored answer with the newest key %s", cbs[0], sub.Key)
	}
	if _, err := testenv.WaitState(ctx, env, job, certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
		t.Fatal(err)
	}
	if n := xs.CallbackCount(id); n != 1 {
		t.Errorf("%d LMS callbacks, want 1", n)
	}
}

// waitKey waits until the record of job has an xqueue key that ok accepts.
func waitKey(ctx context.Context, env *testenv.Env, job string, ok func(string) bool) error {
	updates, err := env.P.Records.Watch(ctx, true)
	if err != nil {
		return err
	}
	for r := range updates {
		if r.Id == job && ok(r.XqueueKey) {
			return nil
		}
	}
	return fmt.Errorf("job %s: key never changed: %w", job, ctx.Err())
}

// TestSubmissionGoneEndsVisibly: xqueue answers a post with "Submission
// does not exist" (its row was deleted). The job ends, once, with the
// reason in its record; it is not posted again and again.
func TestSubmissionGoneEndsVisibly(t *testing.T) {
	env, xs, xq := setup(t)
	xs.Inject(xqueuetest.Fault{Endpoint: "put_result", Body: `{"return_code": 1, "content": "Submission does not exist"}`, Every: 1})
	env.RunConsumer(t, nil, nil)
	env.RunBridge(t, bridge.WithXQueue(xq))
	ctx := waitCtx(t)
	id := xs.Submit(body(t, create("jdoe", "Jane Doe")))
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.LastError, "Submission does not exist") || rec.AnswersPosted != 0 || rec.PostingKey != "" {
		t.Errorf("record %v: want the reason shown, no answer counted and no claim left", rec)
	}
	if st := xs.Stats(); st.FaultsApplied != 1 || xs.CallbackCount(id) != 0 {
		t.Errorf("stats %+v: want one refused post and no LMS callback", st)
	}
}
