package control_test

// End-to-end flows: the control service next to a real bridge (pulling from
// the xqueue stand-in with the real xqueue client) and a real consumer
// (real renderer, real file storage), all on one embedded NATS server.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

const downloadBase = "https://certs.example.test"

// fileStorage is real file storage whose volume can be taken away (as an
// unmounted disk: the directory is replaced by a plain file) and brought
// back.
type fileStorage struct {
	storage.Store
	dir string
}

func newFileStorage(t *testing.T) *fileStorage {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	return &fileStorage{Store: st, dir: dir}
}

func (f *fileStorage) unmount(t *testing.T) {
	t.Helper()
	if err := os.Rename(f.dir, f.dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dir, []byte("not mounted"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fileStorage) mount(t *testing.T) {
	t.Helper()
	if err := os.Remove(f.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.dir+".away", f.dir); err != nil {
		t.Fatal(err)
	}
}

// flow is the whole of certd for one test.
type flow struct {
	*env
	xs         *xqueuetest.Server
	xq         *xqueue.Client
	store      *fileStorage
	log        *slog.Logger
	stopBridge func()
}

func newFlow(t *testing.T) *flow {
	t.Helper()
	p := startPipeline(t, pipeline.Options{AckWait: 5 * time.Second, HeartbeatTTL: 3 * time.Second})
	xs := xqueuetest.NewServer(xqueuetest.WithUser(xqUser, xqPass))
	t.Cleanup(xs.Close)
	xq := xqueueClient(t, xs)
	f := &flow{xs: xs, xq: xq, store: newFileStorage(t), log: testenv.Logger(t)}
	f.env = newEnvOn(t, p, control.ServerConfig{Token: token}, control.WithXQueue(xq), control.WithXqueueURL(xs.URL()))
	f.stopBridge = f.runBridge(t)
	return f
}

// runBridge starts a bridge pulling from the stand-in.
func (f *flow) runBridge(t *testing.T) (stop func()) {
	b := bridge.New(f.p, bridge.WithXQueue(f.xq), bridge.WithLogger(f.log), bridge.WithPollInterval(20*time.Millisecond),
		bridge.WithPrivateCallbacks(true)) // the test's callback server is on loopback
	return testenv.Run(t, b.Run)
}

// runConsumer starts a consumer with the real handler over the flow's
// storage.
func (f *flow) runConsumer(t *testing.T) {
	t.Helper()
	catalog, err := courses.Load("", courses.Site{})
	if err != nil {
		t.Fatal(err)
	}
	h := consumer.NewHandler(consumer.HandlerConfig{
		Store: f.store, Renderer: testenv.Renderer(t), Catalog: catalog,
		DownloadURL: downloadBase, VerifyURL: "https://verify.example.test", Logger: f.log,
	})
	// One worker is enough for every action (a slot is taken only once a
	// message has arrived).
	c := consumer.New(f.p, h, consumer.WithLogger(f.log), consumer.WithWorkers(1),
		consumer.WithMaxAttempts(2), consumer.WithRetryDelay(20*time.Millisecond))
	testenv.Run(t, c.Run)
}

// jobWatch follows WatchJobs and keeps the latest state of every job.
type jobWatch struct {
	mu      sync.Mutex
	latest  map[string]*certdv1.JobRecord
	changed chan struct{}
	err     error
}

func watchJobs(t *testing.T, c certdv1.ControlClient, f *certdv1.JobFilter) *jobWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(authed(t))
	t.Cleanup(cancel)
	stream, err := c.WatchJobs(ctx, &certdv1.WatchJobsRequest{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // live from here on
		t.Fatal(err)
	}
	w := &jobWatch{latest: map[string]*certdv1.JobRecord{}, changed: make(chan struct{})}
	go func() {
		for {
			ev, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				w.latest[ev.Id] = ev.Job
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return w
}

// until waits for cond over the latest records.
func (w *jobWatch) until(t *testing.T, what string, cond func(map[string]*certdv1.JobRecord) bool) {
	t.Helper()
	timeout := time.NewTimer(40 * time.Second)
	defer timeout.Stop()
	for {
		w.mu.Lock()
		ok, err, ch := cond(w.latest), w.err, w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: watch ended: %v", what, err)
		}
		select {
		case <-ch:
		case <-timeout.C:
			w.mu.Lock()
			defer w.mu.Unlock()
			var states []string
			for id, r := range w.latest {
				states = append(states, id+"="+r.State.String())
			}
			t.Fatalf("timed out waiting for %s; jobs: %v", what, states)
		}
	}
}

// countIn counts jobs in one of the states.
func countIn(m map[string]*certdv1.JobRecord, states ...certdv1.JobState) int {
	n := 0
	for _, r := range m {
		for _, s := range states {
			if r.State == s {
				n++
			}
		}
	}
	return n
}

func lmsBody(user string) string {
	b, _ := json.Marshal(map[string]string{"action": "create", "username": user, "course_id": "course-v1:edX+DemoX+Demo",
		"course_name": "Demonstration Course", "name": "Jane " + user, "grade": "Pass"})
	return string(b)
}

type answer struct {
	Action, DownloadUUID, VerifyUUID, Username, CourseID, URL, Error, ErrorReason string
}

func decodeAnswer(t *testing.T, body []byte) answer {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return answer{m["action"], m["download_uuid"], m["verify_uuid"], m["username"], m["course_id"], m["url"], m["error"], m["error_reason"]}
}

// TestStorageOutageRequeue: storage goes away, jobs are retried, die and
// are held without an answer; storage comes back, the operator requeues
// them, and each submission is answered exactly once, with success and the
// uuids it was given first.
func TestStorageOutageRequeue(t *testing.T) {
	f := newFlow(t)
	ctx := authed(t)
	w := watchJobs(t, f.client, nil)
	f.store.unmount(t)
	f.runConsumer(t)

	subs := map[int64]string{}
	for _, u := range []string{"ana", "bo", "chen"} {
		subs[f.xs.Submit(lmsBody(u))] = u
	}
	w.until(t, "three held jobs", func(m map[string]*certdv1.JobRecord) bool {
		return countIn(m, certdv1.JobState_JOB_STATE_DEAD) == 3
	})
	st, err := f.client.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.JobsByState["JOB_STATE_DEAD"] != 3 {
		t.Errorf("status jobs by state %v, want 3 dead", st.JobsByState)
	}
	before := map[string]*certdv1.JobRecord{}
	for id := range subs {
		r := get(t, f.p, "xq-"+itoa(id))
		if r.Attempts != 2 || !strings.Contains(r.LastError, "storage put") {
			t.Errorf("%s held after %d attempts, last error %q; want 2 attempts failing on storage", r.Id, r.Attempts, r.LastError)
		}
		before[r.Id] = r
		if n := f.xs.CallbackCount(id); n != 0 {
			t.Errorf("submission %d answered %d times while held", id, n)
		}
	}

	f.store.mount(t)
	resp, err := f.client.Requeue(ctx, &certdv1.RequeueRequest{Filter: &certdv1.JobFilter{States: []certdv1.JobState{certdv1.JobState_JOB_STATE_DEAD}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Requeued) != 3 || len(resp.Skipped) != 0 {
		t.Fatalf("Requeue = %v, want the three held jobs", resp)
	}
	w.until(t, "three answered jobs", func(m map[string]*certdv1.JobRecord) bool {
		return countIn(m, certdv1.JobState_JOB_STATE_ANSWERED) == 3
	})
	for id, user := range subs {
		cbs := f.xs.CallbacksFor(id)
		if len(cbs) != 1 {
			t.Errorf("submission %d (%s): %d LMS callbacks, want exactly 1", id, user, len(cbs))
			continue
		}
		a := decodeAnswer(t, []byte(cbs[0].Body))
		old := before["xq-"+itoa(id)]
		if a.Error != "" || a.Username != user || a.DownloadUUID != old.DownloadUuid || a.VerifyUUID != old.VerifyUuid {
			t.Errorf("submission %d answer %+v; want success for %s with uuids %s/%s", id, a, user, old.DownloadUuid, old.VerifyUuid)
		}
		pdf, err := os.ReadFile(filepath.Join(f.store.dir, "downloads", a.DownloadUUID, "Certificate.pdf"))
		if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
			t.Errorf("certificate of %s not stored: %v", user, err)
		}
		r := get(t, f.p, "xq-"+itoa(id))
		if r.Generation != 1 || r.AnswersPosted != 1 || !r.AnswerOk {
			t.Errorf("%s: generation %d, answers posted %d, ok %v", r.Id, r.Generation, r.AnswersPosted, r.AnswerOk)
		}
	}
	if n := f.xs.Stats().Callbacks; n != 3 {
		t.Errorf("%d LMS callbacks in all, want 3", n)
	}
}

// TestSubmitCallback: a job submitted through the control service is
// answered to its callback URL with the success body, which also stays in
// the record.
func TestSubmitCallback(t *testing.T) {
	f := newFlow(t)
	ctx := authed(t)
	type post struct {
		contentType string
		body        []byte
	}
	posts := make(chan post, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/hook" {
			posts <- post{r.Header.Get("Content-Type"), b}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	f.runConsumer(t)
	w := watchJobs(t, f.client, &certdv1.JobFilter{Source: certdv1.Source_SOURCE_SUBMIT})

	resp, err := f.client.Submit(ctx, &certdv1.SubmitRequest{Username: "dana", CourseId: "course-v1:edX+DemoX+Demo",
		Name: "Dana Scully", CallbackUrl: hook.URL + "/hook?token=abc"})
	if err != nil {
		t.Fatal(err)
	}
	var got post
	select {
	case got = <-posts:
	case <-ctx.Done():
		t.Fatal("no callback")
	}
	a := decodeAnswer(t, got.body)
	if got.contentType != "application/json" || a.Action != "create" || a.Username != "dana" || a.CourseID != "course-v1:edX+DemoX+Demo" ||
		a.DownloadUUID != resp.Job.DownloadUuid || a.VerifyUUID != resp.Job.VerifyUuid ||
		a.URL != downloadBase+"/downloads/"+resp.Job.DownloadUuid+"/Certificate.pdf" || a.Error != "" {
		t.Errorf("callback %s %s; want the success answer for %s", got.contentType, got.body, resp.Id)
	}
	w.until(t, "the job answered", func(m map[string]*certdv1.JobRecord) bool {
		return m[resp.Id].GetState() == certdv1.JobState_JOB_STATE_ANSWERED
	})
	j, err := f.client.GetJob(ctx, &certdv1.GetJobRequest{Id: resp.Id})
	if err != nil {
		t.Fatal(err)
	}
	if string(j.Job.Answer) != string(got.body) || !j.Job.AnswerOk || j.Job.AnswersPosted != 1 || j.Job.DownloadUrl != a.URL {
		t.Errorf("record after the callback: answer %s ok %v posted %d url %q", j.Job.Answer, j.Job.AnswerOk, j.Job.AnswersPosted, j.Job.DownloadUrl)
	}
	if _, err := os.Stat(filepath.Join(f.store.dir, "downloads", a.DownloadUUID, "Certificate.pdf")); err != nil {
		t.Errorf("certificate not stored: %v", err)
	}
	if n := len(posts); n != 0 {
		t.Errorf("%d more callbacks", n)
	}
}

// TestPauseIntake: while intake is paused the bridge does not call xqueue
// at all (get_queuelen does not move, new submissions are not pulled) and
// the consumers drain what is queued; after ResumeIntake the running bridge
// polls again.
//
// The bridge reads the switch before every poll, so a poll already under
// way when the switch flips may still finish. To make "not at all" exact,
// the pause is set while the bridge is down (an operator pausing before a
// deploy) and the bridge restarted paused.
func TestPauseIntake(t *testing.T) {
	f := newFlow(t)
	ctx := authed(t)
	w := watchJobs(t, f.client, nil)

	// Three jobs pulled and queued; no consumer yet, so they stay queued.
	first := []int64{f.xs.Submit(lmsBody("a1")), f.xs.Submit(lmsBody("a2")), f.xs.Submit(lmsBody("a3"))}
	w.until(t, "three queued jobs", func(m map[string]*certdv1.JobRecord) bool {
		return countIn(m, certdv1.JobState_JOB_STATE_QUEUED) == 3
	})
	f.stopBridge()
	st, err := f.client.PauseIntake(ctx, &certdv1.PauseIntakeRequest{Reason: "LMS upgrade"})
	if err != nil || !st.Paused {
		t.Fatalf("PauseIntake = %v, %v", st, err)
	}
	atPause := f.xs.Stats().QueueLens
	later := []int64{f.xs.Submit(lmsBody("b1")), f.xs.Submit(lmsBody("b2"))}
	f.runBridge(t)
	f.runConsumer(t)

	// The queued jobs drain and the bridge relays their answers.
	if _, err := f.xs.WaitCallbacks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for _, id := range first {
		if n := f.xs.CallbackCount(id); n != 1 {
			t.Errorf("queued submission %d answered %d times while paused, want 1", id, n)
		}
	}
	if d := f.xs.Stats().QueueLens - atPause; d != 0 {
		t.Errorf("get_queuelen called %d times while intake was paused", d)
	}
	for _, id := range later {
		if s, _ := f.xs.Submission(id); s.Pulls != 0 {
			t.Errorf("submission %d pulled %d times while intake was paused", id, s.Pulls)
		}
	}
	status, err := f.client.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !status.IntakePaused || status.Xqueue.QueueLength != 2 {
		t.Errorf("status while paused: paused %v, xqueue %v; want paused with 2 waiting", status.IntakePaused, status.Xqueue)
	}

	resumedAt := f.xs.Stats().QueueLens
	if _, err := f.client.ResumeIntake(ctx, &certdv1.ResumeIntakeRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.xs.WaitCallbacks(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if f.xs.Stats().QueueLens <= resumedAt {
		t.Error("get_queuelen not called after ResumeIntake")
	}
	for _, id := range append(first, later...) {
		if n := f.xs.CallbackCount(id); n != 1 {
			t.Errorf("submission %d answered %d times, want 1", id, n)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
