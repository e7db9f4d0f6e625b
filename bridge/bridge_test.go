package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer/storage/s3test"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code := s3test.Main(m)
	if code == 0 {
		// Every goroutine the bridge, the stand-in and the clients started
		// has stopped (goleak retries while stragglers wind down).
		if err := goleak.Find(before); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// setup starts NATS, the pipeline and an xqueue stand-in, and returns a
// client of the stand-in.
func setup(t *testing.T, opts ...xqueuetest.Option) (*testenv.Env, *xqueuetest.Server, *xqueue.Client) {
	t.Helper()
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t, opts...)
	return env, xs, xq
}

func body(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func create(username, name string) map[string]any {
	return map[string]any{"action": "create", "username": username, "course_id": "course-v1:edX+DemoX+Demo_Course",
		"course_name": "Demonstration Course", "name": name, "grade": "Pass"}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type answer struct {
	Action, DownloadUUID, VerifyUUID, Username, CourseID, URL, Error, ErrorReason string
}

func decode(t *testing.T, cb xqueuetest.Callback) answer {
	t.Helper()
	var m map[string]string
	if err := cb.Decode(&m); err != nil {
		t.Fatalf("callback body %q: %v", cb.Body, err)
	}
	return answer{m["action"], m["download_uuid"], m["verify_uuid"], m["username"], m["course_id"], m["url"], m["error"], m["error_reason"]}
}

// getter reads stored files.
type getter interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// checkFiles asserts a success answer's files exist in the env's store and
// the signature verifies with GnuPG.
func checkFiles(t *testing.T, env *testenv.Env, a answer) {
	t.Helper()
	checkFilesIn(t, env, env.Store, a)
}

func checkFilesIn(t *testing.T, env *testenv.Env, store getter, a answer) {
	t.Helper()
	ctx := context.Background()
	pdfKey := "downloads/" + a.DownloadUUID + "/Certificate.pdf"
	if a.URL != testenv.DownloadURL+"/"+pdfKey {
		t.Errorf("url = %q, want %q", a.URL, testenv.DownloadURL+"/"+pdfKey)
	}
	pdf, err := store.Get(ctx, pdfKey)
	if err != nil {
		t.Fatalf("pdf: %v", err)
	}
	if !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Errorf("%s is not a PDF", pdfKey)
	}
	sig, err := store.Get(ctx, "cert/"+a.VerifyUUID+"/Certificate.pdf.sig")
	if err != nil {
		t.Fatalf("sig: %v", err)
	}
	if err := testenv.GPGVerify(t, pdf, sig, env.Signer.PublicKey()); err != nil {
		t.Errorf("%s: %v", a.Username, err)
	}
	for _, page := range []string{"valid.html", "verify.html"} {
		if _, err := store.Get(ctx, "cert/"+a.VerifyUUID+"/"+page); err != nil {
			t.Errorf("%s: %v", page, err)
		}
	}
}

// TestEveryJobAnsweredExactlyOnce feeds a mix of good and bad jobs and
// checks that each submission gets exactly one LMS callback with the right
// body, and that the files exist and verify with GnuPG.
func TestEveryJobAnsweredExactlyOnce(t *testing.T) {
	env, xs, xq := setup(t)
	stopBridge := env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)

	names := []string{"Jane Doe", "Zoë Ångström", "Nguyễn Thị Minh Khai", "Ελένη Παπαδοπούλου", "Иван Петров",
		"王小明", "김민준", "أحمد عبد الله", "שָׂרָה לֵוִי", `<script>alert(1)</script>`}
	good := map[int64]string{}
	for i, n := range names {
		u := fmt.Sprintf("learner%d", i)
		good[xs.Submit(body(t, create(u, n)))] = u
	}
	bad := map[int64]string{
		xs.Submit(`not json at all`): "job body is not a JSON object",
		xs.Submit(body(t, map[string]any{"action": "frobnicate", "username": "u", "course_id": "c"})):                                                            `unknown action "frobnicate"`,
		xs.Submit(body(t, map[string]any{"action": "create", "username": "u", "course_id": "course-v1:a+b+c"})):                                                  "missing name",
		xs.Submit(body(t, map[string]any{"action": "create", "username": "u", "course_id": "course-v1:a+b+c", "name": "N", "template_pdf": "../../etc/passwd"})): "design",
	}
	total := len(good) + len(bad)
	ctx := waitCtx(t)
	if _, err := xs.WaitCallbacks(ctx, total); err != nil {
		t.Fatalf("waiting for %d callbacks: %v (stats %+v)", total, err, xs.Stats())
	}
	stopBridge() // posts under way finish: a late duplicate would show below
	for id, u := range good {
		cbs := xs.CallbacksFor(id)
		if len(cbs) != 1 {
			t.Fatalf("submission %d (%s): %d callbacks, want 1", id, u, len(cbs))
		}
		a := decode(t, cbs[0])
		if a.Error != "" || a.Action != "create" || a.Username != u || a.CourseID != "course-v1:edX+DemoX+Demo_Course" ||
			!lms.IsUUID(a.DownloadUUID) || !lms.IsUUID(a.VerifyUUID) {
			t.Errorf("submission %d: answer %+v", id, a)
			continue
		}
		checkFiles(t, env, a)
	}
	for id, want := range bad {
		cbs := xs.CallbacksFor(id)
		if len(cbs) != 1 {
			t.Fatalf("bad submission %d: %d callbacks, want 1", id, len(cbs))
		}
		a := decode(t, cbs[0])
		if !strings.Contains(a.ErrorReason, want) || !strings.HasPrefix(a.Error, "There was an error processing the certificate request: ") {
			t.Errorf("bad submission %d: answer %+v, want reason containing %q", id, a, want)
		}
	}
	if n := len(xs.Pending()); n != 0 {
		t.Errorf("%d submissions still pending in xqueue", n)
	}
}

// TestReofferedWhileWaitingAnsweredOnceWithNewestKey lets xqueue offer every
// job again (new keys) while the jobs wait in JetStream: each submission
// still gets exactly one answer, posted with its newest key.
func TestReofferedWhileWaitingAnsweredOnceWithNewestKey(t *testing.T) {
	env, xs, xq := setup(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	const n = 8
	ids := map[int64]bool{}
	for i := 0; i < n; i++ {
		ids[xs.Submit(body(t, create(fmt.Sprintf("u%d", i), "Jane Doe")))] = true
	}
	ctx := waitCtx(t)
	// No consumer yet: the jobs wait. Every lease runs out twice and the
	// bridge pulls every submission three times in all.
	for round := 1; round <= 3; round++ {
		if _, err := xs.WaitStats(ctx, func(s xqueuetest.Stats) bool { return s.Pulls >= round*n }); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if round < 3 {
			xs.ExpireLeases()
		}
	}
	// The stand-in counts a pull before the bridge stores its key: wait
	// until every record holds its submission's newest key.
	updates, err := env.P.Records.Watch(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	current := map[int64]bool{}
	for rec := range updates {
		sub, _ := xs.Submission(rec.SubmissionId)
		current[rec.SubmissionId] = rec.XqueueKey == sub.Key
		all := len(current) == n
		for _, ok := range current {
			all = all && ok
		}
		if all {
			break
		}
	}
	if pending, _ := env.P.JobsPending(ctx); pending != n {
		t.Fatalf("%d jobs in the stream, want %d: re-offers must not be published again", pending, n)
	}
	env.RunConsumer(t, nil, nil)
	if _, err := xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := xs.Wait(ctx, func() bool { return len(xs.Retired()) == n }); err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		cbs := xs.CallbacksFor(id)
		sub, _ := xs.Submission(id)
		if len(cbs) != 1 {
			t.Errorf("submission %d: %d callbacks", id, len(cbs))
			continue
		}
		if cbs[0].Key != sub.Key || sub.Pulls < 3 {
			t.Errorf("submission %d answered with key %s, newest %s (pulls %d)", id, cbs[0].Key, sub.Key, sub.Pulls)
		}
	}
	if s := xs.Stats(); s.Rejected != 0 {
		t.Errorf("%d put_results rejected: answers used stale keys", s.Rejected)
	}
}

// TestSessionsDroppedMidRun expires xqueue's sessions while jobs flow: the
// bridge logs in again and nothing is lost.
func TestSessionsDroppedMidRun(t *testing.T) {
	env, xs, xq := setup(t)
	stopBridge := env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)
	const n = 12
	for i := 0; i < n; i++ {
		xs.Submit(body(t, create(fmt.Sprintf("u%d", i), "Jane Doe")))
	}
	ctx := waitCtx(t)
	for k := 1; k <= 3; k++ {
		if _, err := xs.WaitCallbacks(ctx, k*n/4); err != nil {
			t.Fatal(err)
		}
		xs.DropSessions()
	}
	if _, err := xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	stopBridge() // posts under way finish: a late duplicate would show below
	cbs := xs.Callbacks()
	seen := map[int64]int{}
	for _, cb := range cbs {
		seen[cb.SubmissionID]++
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("submission %d: %d callbacks", id, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d submissions answered, want %d", len(seen), n)
	}
	if s := xs.Stats(); s.Logins < 2 || s.Redirects == 0 {
		t.Errorf("want re-logins after redirects, stats %+v", s)
	}
}

// countingHandler counts how often jobs are really worked on.
type countingHandler struct {
	h interface {
		Handle(context.Context, *certdv1.Job) (*certdv1.Result, error)
	}
	calls atomic.Int64
}

func (c *countingHandler) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	c.calls.Add(1)
	return c.h.Handle(ctx, job)
}

// TestUnknownOutcomeAnsweredAgainFromStoredResult: a put_result whose
// outcome is unknown (HTTP 500) is not retried blindly; when xqueue offers
// the submission again, the bridge answers from the stored result with the
// new key, without generating the certificate again.
func TestUnknownOutcomeAnsweredAgainFromStoredResult(t *testing.T) {
	env, xs, xq := setup(t)
	xs.Inject(xqueuetest.Fault{Endpoint: "put_result", Status: 500})
	h := &countingHandler{h: env.Handler}
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, h)
	id := xs.Submit(body(t, create("jdoe", "Jane Doe")))
	ctx := waitCtx(t)
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN)
	if err != nil {
		t.Fatal(err)
	}
	xs.ExpireLeases()
	if err := xs.WaitRetired(ctx, id); err != nil {
		t.Fatal(err)
	}
	cbs := xs.CallbacksFor(id)
	if len(cbs) != 1 {
		t.Fatalf("%d callbacks, want 1", len(cbs))
	}
	if a := decode(t, cbs[0]); a.DownloadUUID != rec.DownloadUuid {
		t.Errorf("answer has download_uuid %s, record %s", a.DownloadUUID, rec.DownloadUuid)
	}
	if c := h.calls.Load(); c != 1 {
		t.Errorf("certificate generated %d times, want 1", c)
	}
}

// TestBackpressureStopsPulling: with the pipeline full the bridge keeps
// polling but pulls nothing more, and drains the rest once consumers run.
func TestBackpressureStopsPulling(t *testing.T) {
	env, xs, xq := setup(t)
	env.RunBridge(t, bridge.WithXQueue(xq), bridge.WithMaxPending(5))
	const n = 20
	for i := 0; i < n; i++ {
		xs.Submit(body(t, create(fmt.Sprintf("u%d", i), "Jane Doe")))
	}
	ctx := waitCtx(t)
	st, err := xs.WaitStats(ctx, func(s xqueuetest.Stats) bool { return s.Pulls >= 5 })
	if err != nil {
		t.Fatal(err)
	}
	// Several more polls of a full pipeline must not pull.
	if _, err := xs.WaitStats(ctx, func(s xqueuetest.Stats) bool { return s.QueueLens >= st.QueueLens+5 }); err != nil {
		t.Fatal(err)
	}
	if s := xs.Stats(); s.Pulls != 5 {
		t.Errorf("pulled %d submissions with a cap of 5", s.Pulls)
	}
	env.RunConsumer(t, nil, nil)
	if _, err := xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := xs.Wait(ctx, func() bool { return len(xs.Retired()) == n }); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPipeline measures jobs per second end to end: xqueue stand-in →
// bridge → JetStream → consumer (render, sign, store) → relay → put_result.
func BenchmarkPipeline(b *testing.B) {
	env := testenv.Start(b, pipeline.Options{})
	xs, xq := env.XQueue(b)
	env.RunBridge(b, bridge.WithXQueue(xq), bridge.WithMaxPending(100000))
	env.RunConsumer(b, nil, nil)
	names := []string{"Jane Doe", "王小明", "أحمد عبد الله", "Ελένη Παπαδοπούλου"}
	ctx := context.Background()
	// Warm up: fonts, connections, first login.
	xs.Submit(fmt.Sprintf(`{"action":"create","username":"warm","course_id":"course-v1:a+b+c","name":%q}`, names[0]))
	if _, err := xs.WaitCallbacks(ctx, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		xs.Submit(fmt.Sprintf(`{"action":"create","username":"u%d","course_id":"course-v1:a+b+c","name":%q}`, i, names[i%len(names)]))
	}
	if _, err := xs.WaitCallbacks(ctx, b.N+1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// TestPipelineOnS3: the same pipeline storing into a real S3-compatible
// server (versitygw on loopback).
func TestPipelineOnS3(t *testing.T) {
	env, xs, xq := setup(t)
	store := s3test.Start(t).Open(t, "certs")
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, testenv.NewHandler(t, env, store))
	const n = 6
	for i := 0; i < n; i++ {
		xs.Submit(body(t, create(fmt.Sprintf("u%d", i), "Jane Doe")))
	}
	cbs, err := xs.WaitCallbacks(waitCtx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	for _, cb := range cbs {
		a := decode(t, cb)
		if a.Error != "" {
			t.Fatalf("error answer %+v", a)
		}
		checkFilesIn(t, env, store, a)
	}
	if _, err := env.Store.Get(context.Background(), "downloads/"+decode(t, cbs[0]).DownloadUUID+"/Certificate.pdf"); err == nil {
		t.Error("PDF landed in the local store, not on S3")
	}
}

// crashAfterPost is an xqueue client whose process "crashes" right after
// put_result succeeded: its NATS connection drops before the answer is
// recorded.
type crashAfterPost struct {
	bridge.XQueue
	crash func()
}

func (c *crashAfterPost) PutResult(ctx context.Context, h xqueue.Header, body []byte) error {
	err := c.XQueue.PutResult(ctx, h, body)
	c.crash()
	return err
}

// TestCrashAfterPostDoesNotPostTwice: a bridge dies between a successful
// put_result and recording it. The result is redelivered to another bridge,
// which must not post again (xqueue would accept it and call the LMS a
// second time): it records the outcome as unknown instead.
func TestCrashAfterPostDoesNotPostTwice(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: time.Second})
	xs, xq := env.XQueue(t)
	env.RunConsumer(t, nil, nil)
	doomed := env.Connect(t)
	b1 := bridge.New(doomed, bridge.WithLogger(env.Log), bridge.WithPollInterval(20*time.Millisecond),
		bridge.WithXQueue(&crashAfterPost{XQueue: xq, crash: doomed.Conn().Close}))
	// The crashed bridge stops with an error naming the part that lost
	// its connection first; only the survivor's behaviour is tested.
	testenv.Run(t, func(ctx context.Context) error { _ = b1.Run(ctx); return nil })
	id := xs.Submit(body(t, create("jdoe", "Jane Doe")))
	ctx := waitCtx(t)
	if _, err := xs.WaitCallbacks(ctx, 1); err != nil {
		t.Fatal(err)
	}
	env.RunBridge(t, bridge.WithXQueue(xq)) // the survivor gets the redelivered result
	rec, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PostingKey != "" {
		t.Errorf("claim left behind: %q", rec.PostingKey)
	}
	if n := xs.CallbackCount(id); n != 1 {
		t.Errorf("%d LMS callbacks, want 1", n)
	}
	if s := xs.Stats(); s.PutResults != 1 {
		t.Errorf("%d put_results, want 1", s.PutResults)
	}
}

// TestCallbacksToPrivateAddressesRefused: a submitted job whose callback
// URL points inside the network (here loopback) is not posted there by
// default; its answer stays in the record.
func TestCallbacksToPrivateAddressesRefused(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	env.RunBridge(t)
	env.RunConsumer(t, nil, nil)
	ctx := waitCtx(t)
	rec := &certdv1.JobRecord{
		Id: "sub-" + lms.NewUUID(), Source: certdv1.Source_SOURCE_SUBMIT, Action: certdv1.Action_ACTION_CREATE,
		Username: "jdoe", CourseId: "course-v1:a+b+c",
		DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID(),
		Request:     []byte(body(t, create("jdoe", "Jane Doe"))),
		CallbackUrl: srv.URL + "/hook?secret=s3cr3t",
	}
	if _, _, err := env.P.Lifecycle("test", "").Submit(ctx, rec, "test"); err != nil {
		t.Fatal(err)
	}
	got, err := testenv.WaitState(ctx, env, rec.Id, certdv1.JobState_JOB_STATE_ANSWERED)
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Errorf("callback to a loopback address was posted")
	}
	if !got.AnswerOk || !strings.Contains(got.LastError, "not a public address") {
		t.Errorf("record: answer ok %v, last error %q", got.AnswerOk, got.LastError)
	}
}

// BenchmarkIntake measures the intake alone: get_submission from the
// stand-in, record and publish into JetStream (no consumers run).
func BenchmarkIntake(b *testing.B) {
	env := testenv.Start(b, pipeline.Options{})
	xs, xq := env.XQueue(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	updates, err := env.P.Records.Watch(ctx, false)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		xs.Submit(fmt.Sprintf(`{"action":"create","username":"u%d","course_id":"course-v1:a+b+c","name":"Jane Doe","template_pdf":"certificate-template-a-b.pdf"}`, i))
	}
	b.ResetTimer()
	start := time.Now()
	env.RunBridge(b, bridge.WithXQueue(xq), bridge.WithMaxPending(1<<30))
	queued := map[string]bool{}
	for rec := range updates {
		if rec.State == certdv1.JobState_JOB_STATE_QUEUED {
			queued[rec.Id] = true
			if len(queued) == b.N {
				break
			}
		}
	}
	if len(queued) < b.N {
		b.Fatalf("%d of %d jobs queued: %v", len(queued), b.N, ctx.Err())
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}
