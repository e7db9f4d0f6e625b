package bridge_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// submitted records a Submit job and its answer, as the control service
// and a consumer would (Lifecycle.Submit, then Finish, which publishes the
// result). No consumer runs: the job message waits in its stream.
func submitted(t *testing.T, ctx context.Context, env *testenv.Env, callback string) string {
	t.Helper()
	rec := &certdv1.JobRecord{
		Id: "sub-" + lms.NewUUID(), Source: certdv1.Source_SOURCE_SUBMIT, Action: certdv1.Action_ACTION_CREATE,
		Username: "jdoe", CourseId: "course-v1:a+b+c",
		DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID(),
		Request:     []byte(body(t, create("jdoe", "Jane Doe"))),
		CallbackUrl: callback,
	}
	life := env.P.Lifecycle("test-consumer", "")
	if _, _, err := life.Submit(ctx, rec, "test"); err != nil {
		t.Fatal(err)
	}
	res := &certdv1.Result{JobId: rec.Id, Ok: true, Answer: []byte(`{"action":"create","username":"jdoe"}`)}
	if _, err := life.Finish(ctx, pipeline.NewAttempt(pipeline.JobFromRecord(rec), 1), res); err != nil {
		t.Fatal(err)
	}
	return rec.Id
}

// TestSlowCallbackReceiverDoesNotDelayOthers: 40 callbacks to a receiver
// that never answers hold at most the per-host limit of relay workers, so
// 3 callbacks to a healthy receiver are delivered meanwhile.
func TestSlowCallbackReceiverDoesNotDelayOthers(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	stuck := make(chan struct{})
	var now, most atomic.Int64
	entered := make(chan struct{}, 1024)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select { // never answers
		case <-r.Context().Done():
		case <-stuck:
		}
	}))
	t.Cleanup(bad.Close)
	var good atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { good.Add(1) }))
	t.Cleanup(ok.Close)
	// Each attempt may wait 5 s for the silent receiver: longer than this
	// test takes to deliver the healthy callbacks.
	env.RunBridge(t, bridge.WithPrivateCallbacks(true), bridge.WithCallbackRetries(5*time.Second, 3, time.Second))
	t.Cleanup(func() { close(stuck) }) // first: lets the bridge stop
	ctx := waitCtx(t)
	for i := 0; i < 40; i++ {
		submitted(t, ctx, env, bad.URL+fmt.Sprintf("/hook/%d", i))
	}
	// The silent receiver is busy with its per-host share first.
	for i := 0; i < 2; i++ {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the silent receiver was never called")
		}
	}
	var healthy []string
	for i := 0; i < 3; i++ {
		healthy = append(healthy, submitted(t, ctx, env, ok.URL+"/hook"))
	}
	for _, id := range healthy {
		if _, err := testenv.WaitState(ctx, env, id, certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
			t.Fatal(err)
		}
	}
	if good.Load() != 3 {
		t.Errorf("healthy receiver got %d callbacks, want 3", good.Load())
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d callbacks reached the silent receiver at once, want at most 2 (the per-host limit)", m)
	}
}

// TestFailingCallbackHeldDead: a receiver that keeps failing (503 with
// Retry-After) is tried a bounded number of times; then the job is held
// dead with the reason, for Requeue or Fail.
func TestFailingCallbackHeldDead(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	env.RunBridge(t, bridge.WithPrivateCallbacks(true), bridge.WithCallbackRetries(time.Second, 3, 20*time.Millisecond))
	ctx := waitCtx(t)
	id := submitted(t, ctx, env, srv.URL+"/hook")
	rec, err := testenv.WaitState(ctx, env, id, certdv1.JobState_JOB_STATE_DEAD)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.LastError, "failed 3 times") || !strings.Contains(rec.LastError, "HTTP 503") || rec.DeadAt == nil {
		t.Errorf("dead record: last error %q, dead at %v", rec.LastError, rec.DeadAt)
	}
	if hits.Load() != 3 {
		t.Errorf("%d attempts, want 3", hits.Load())
	}
}

// TestAmbiguousIPv4CallbacksRefused: hosts written as a decimal, short,
// octal or hex number are refused with a clear reason and not retried,
// even where private callbacks are allowed.
func TestAmbiguousIPv4CallbacksRefused(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	env.RunBridge(t, bridge.WithPrivateCallbacks(true))
	ctx := waitCtx(t)
	for _, host := range []string{"2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1", "127.0.1"} {
		id := submitted(t, ctx, env, "http://"+host+":"+u.Port()+"/hook")
		rec, err := testenv.WaitState(ctx, env, id, certdv1.JobState_JOB_STATE_ANSWERED)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rec.LastError, "not a dotted-quad IPv4 address") {
			t.Errorf("%s: last error %q", host, rec.LastError)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("%d callbacks reached the receiver through a numeric host", hits.Load())
	}
}

// TestGivenUpCallbackKeepsAnswer: once the hold grace has passed, a job
// held for its callback is closed with its answer kept in the record; the
// failing receiver is not called again.
func TestGivenUpCallbackKeepsAnswer(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	env.RunBridge(t, bridge.WithPrivateCallbacks(true), bridge.WithCallbackRetries(time.Second, 2, 10*time.Millisecond),
		bridge.WithHoldGrace(100*time.Millisecond), bridge.WithReapInterval(50*time.Millisecond))
	ctx := waitCtx(t)
	id := submitted(t, ctx, env, srv.URL+"/hook")
	rec, err := testenv.WaitState(ctx, env, id, certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.LastError, "callback given up") || !rec.AnswerOk || len(rec.Answer) == 0 {
		t.Errorf("record: last error %q, answer ok %v, answer %q", rec.LastError, rec.AnswerOk, rec.Answer)
	}
	if hits.Load() != 2 {
		t.Errorf("%d callback attempts, want 2", hits.Load())
	}
}

// TestResultOfOlderConsumerIsAdopted: a consumer of an older version
// publishes its result before recording it and leaves the answer out of
// the record. The relay stores the answer the message carries in the
// record and delivers it, so that jobs in flight during an upgrade are
// answered.
func TestResultOfOlderConsumerIsAdopted(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- string(b):
		default:
		}
	}))
	t.Cleanup(srv.Close)
	ctx := waitCtx(t)
	rec := &certdv1.JobRecord{
		Id: "sub-" + lms.NewUUID(), Source: certdv1.Source_SOURCE_SUBMIT, Action: certdv1.Action_ACTION_CREATE,
		State: certdv1.JobState_JOB_STATE_RUNNING, Username: "jdoe", CourseId: "course-v1:a+b+c",
		DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID(), CallbackUrl: srv.URL + "/hook",
	}
	kv, err := pipelinetest.Bucket(ctx, env.P.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if err := pipelinetest.Put(ctx, kv, rec); err != nil {
		t.Fatal(err)
	}
	answer := `{"action":"create","username":"jdoe","old":"consumer"}`
	if err := env.P.PublishResult(ctx, certdv1.Source_SOURCE_SUBMIT, &certdv1.Result{JobId: rec.Id, Ok: true, Answer: []byte(answer)}); err != nil {
		t.Fatal(err)
	}
	env.RunBridge(t, bridge.WithPrivateCallbacks(true))
	select {
	case b := <-got:
		if b != answer {
			t.Errorf("callback got %s, want %s", b, answer)
		}
	case <-ctx.Done():
		t.Fatal("no callback")
	}
	done, err := testenv.WaitState(ctx, env, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	if string(done.Answer) != answer || !done.AnswerOk || done.AnswersPosted != 1 {
		t.Errorf("record: answer %q ok %v posted %d", done.Answer, done.AnswerOk, done.AnswersPosted)
	}
}
