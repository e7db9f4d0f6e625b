package control_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/intakelock"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

const xqUser, xqPass = "certd", "xq-pass-81"

// xqueueClient is a real xqueue client of the stand-in.
func xqueueClient(t *testing.T, xs *xqueuetest.Server) *xqueue.Client {
	t.Helper()
	c, err := xqueue.New(xqueue.Config{BaseURL: xs.URL(), Username: xqUser, Password: xqPass,
		RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxAttempts: 2, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitWorker waits until worker id has sent a heartbeat.
func waitWorker(t *testing.T, p *pipeline.Pipeline, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := p.Workers.Watch(ctx, id, jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case e := <-w.Updates():
			if e != nil {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no heartbeat from %s", id)
		}
	}
}

func TestGetStatus(t *testing.T) {
	xs := xqueuetest.NewServer(xqueuetest.WithUser(xqUser, xqPass))
	t.Cleanup(xs.Close)
	for range 3 {
		xs.Submit(`{"action": "create", "username": "u", "course_id": "course-v1:a+b+c", "name": "N"}`)
	}
	// A long ack wait: the job held below must stay "in flight" however
	// slow the machine.
	e := newEnvOn(t, startPipeline(t, pipeline.Options{AckWait: time.Hour}), control.ServerConfig{Token: token},
		control.WithXQueue(xqueueClient(t, xs)), control.WithXqueueURL(xs.URL()), control.WithRegion("us-east"))
	ctx := authed(t)

	// Two create jobs and a remove queued; one create taken by a worker
	// and not acked yet; a held job failed, its result waiting.
	var verify string
	for range 2 {
		resp, err := e.client.Submit(ctx, &certdv1.SubmitRequest{Username: "u", CourseId: "course-v1:a+b+c", Name: "N"})
		if err != nil {
			t.Fatal(err)
		}
		verify = resp.GetJob().GetVerifyUuid()
	}
	if _, err := e.client.Submit(ctx, &certdv1.SubmitRequest{Action: certdv1.Action_ACTION_REMOVE, Username: "u", CourseId: "course-v1:a+b+c", DeleteVerifyUuid: verify}); err != nil {
		t.Fatal(err)
	}
	cons, err := e.p.JobMessages(ctx, certdv1.Action_ACTION_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() { // held, not acked
	}
	put(t, e.p, rec{id: "xq-9", state: certdv1.JobState_JOB_STATE_DEAD})
	put(t, e.p, rec{id: "xq-10", state: certdv1.JobState_JOB_STATE_DEAD})
	if _, err := e.client.Fail(ctx, &certdv1.FailRequest{Ids: []string{"xq-9"}}); err != nil {
		t.Fatal(err)
	}

	// A bridge in another region heartbeats; the control service does too.
	bridgeWorker := pipeline.NewWorker("bridge", "eu-west")
	hbCtx, stopHB := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		e.p.Heartbeat(hbCtx, bridgeWorker, func(w *certdv1.Worker) { w.InFlight, w.Done = 2, 40 }, slog.Default())
	}()
	t.Cleanup(func() { stopHB(); <-hbDone })
	waitWorker(t, e.p, bridgeWorker.Id)
	waitWorker(t, e.p, e.svc.Worker().Id)

	st, err := e.client.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if x := st.Xqueue; !x.Configured || !x.Reachable || x.QueueLength != 3 || x.Url != xs.URL() || x.Error != "" {
		t.Errorf("xqueue status %v; want configured, reachable, 3 waiting", x)
	}
	if st.IntakePaused {
		t.Error("intake reported paused")
	}
	figures := map[certdv1.Action]*certdv1.ActionStatus{}
	for _, a := range st.Actions {
		figures[a.Action] = a
	}
	if c := figures[certdv1.Action_ACTION_CREATE]; c.GetPending() != 1 || c.GetInFlight() != 1 || c.GetConsumer() != "job-create" {
		t.Errorf("create figures %v; want 1 pending, 1 in flight", c)
	}
	if r := figures[certdv1.Action_ACTION_REMOVE]; r.GetPending() != 1 || r.GetInFlight() != 0 {
		t.Errorf("remove figures %v; want 1 pending", r)
	}
	if r := figures[certdv1.Action_ACTION_REGEN]; r.GetPending() != 0 {
		t.Errorf("regen figures %v; want none", r)
	}
	if st.ResultsWaiting != 1 {
		t.Errorf("results waiting %d, want 1", st.ResultsWaiting)
	}
	wantStates := map[string]int64{"JOB_STATE_QUEUED": 3, "JOB_STATE_DEAD": 1, "JOB_STATE_RESULT_READY": 1}
	if len(st.JobsByState) != len(wantStates) {
		t.Errorf("jobs by state %v, want %v", st.JobsByState, wantStates)
	}
	for k, v := range wantStates {
		if st.JobsByState[k] != v {
			t.Errorf("jobs by state %v, want %v", st.JobsByState, wantStates)
			break
		}
	}
	if len(st.Workers) != 2 {
		t.Fatalf("workers %v, want the bridge and the control service", st.Workers)
	}
	b, c := st.Workers[0], st.Workers[1] // sorted by region: eu-west, us-east
	if b.Role != "bridge" || b.Region != "eu-west" || b.InFlight != 2 || b.Done != 40 || b.Host == "" || b.Version == "" || b.LastHeartbeat == nil {
		t.Errorf("bridge worker %v", b)
	}
	if c.Role != "control" || c.Region != "us-east" || c.Id != e.svc.Worker().Id || c.LastHeartbeat == nil {
		t.Errorf("control worker %v", c)
	}
	if st.At == nil {
		t.Error("no time on the status")
	}

	// Paused intake and an xqueue that cannot be reached are part of the
	// answer, not a failure of the call.
	if _, err := e.client.PauseIntake(ctx, &certdv1.PauseIntakeRequest{}); err != nil {
		t.Fatal(err)
	}
	xs.Close()
	st, err = e.client.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if x := st.Xqueue; !x.Configured || x.Reachable || x.Error == "" || !st.IntakePaused {
		t.Errorf("status with xqueue down and intake paused: xqueue %v, paused %v", x, st.IntakePaused)
	}

	// Without xqueue configured, it says so.
	plain := control.NewService(e.p)
	st, err = plain.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Xqueue.Configured || st.Xqueue.Reachable {
		t.Errorf("xqueue without a client: %v", st.Xqueue)
	}
}

// TestGetStatusShowsIntakeHolder: GetStatus names the bridge that holds a
// queue's intake lock (the one that pulls), and nobody before.
func TestGetStatusShowsIntakeHolder(t *testing.T) {
	p := startPipeline(t, pipeline.Options{})
	svc := control.NewService(p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := svc.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil || len(st.IntakeHolders) != 0 {
		t.Fatalf("before any bridge: holders %v, %v", st.GetIntakeHolders(), err)
	}
	kv, err := p.IntakeLockBucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock := intakelock.New(kv, "certificates", "bridge-a", "eu-west", time.Minute, slog.Default())
	held := make(chan struct{})
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = lock.Run(lctx, func(tenure context.Context) { close(held); <-tenure.Done() })
	}()
	t.Cleanup(func() { stop(); <-done })
	<-held
	st, err = svc.GetStatus(ctx, &certdv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.IntakeHolders) != 1 {
		t.Fatalf("holders %v, want bridge-a", st.IntakeHolders)
	}
	h := st.IntakeHolders[0]
	if h.Queue != "certificates" || h.HolderId != "bridge-a" || h.Region != "eu-west" || h.TtlMs != 60000 || h.Revision == 0 || h.Since == nil {
		t.Errorf("holder %v", h)
	}
}
