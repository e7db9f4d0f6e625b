package main

// The regional preference (overflow-threshold, home-region): real certd
// consumers in two regions of a supercluster bind to the same durable job
// consumers through JetStream's overflow priority policy; the remote one is
// served only while the backlog of an action is at the threshold or past it.

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// waitJobConsumer polls the job consumer of an action until want holds of
// its info. JetStream sends no event when a consumer's counts change, so
// this asks again after a backoff; ctx bounds it.
func waitJobConsumer(ctx context.Context, t *testing.T, natsURL string, a certdv1.Action, want func(*jetstream.ConsumerInfo) bool) *jetstream.ConsumerInfo {
	t.Helper()
	js := jetStreamAt(t, natsURL)
	var last *jetstream.ConsumerInfo
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		c, err := js.Consumer(ctx, pipeline.JobsStream, pipeline.ConsumerName(a))
		if err == nil {
			if last, err = c.Info(ctx); err == nil && want(last) {
				return last
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				t.Fatalf("consumer %s never matched: pending %d, ack pending %d, waiting pulls %d (last error %v)",
					pipeline.ConsumerName(a), last.NumPending, last.NumAckPending, last.NumWaiting, err)
			}
			t.Fatalf("consumer %s never matched: %v", pipeline.ConsumerName(a), err)
		case <-time.After(delay): // backoff between requests, not a synchronisation
		}
	}
}

var workerID = regexp.MustCompile(`msg="consumer started".* worker=(\S+)`)

// workerOf is the worker id a consumer process announced at start.
func workerOf(t *testing.T, p *proc) string {
	t.Helper()
	m := workerID.FindStringSubmatch(p.out.text())
	if m == nil {
		t.Fatalf("%s did not announce its worker id", p.name)
	}
	return m[1]
}

// Overflow, with consumers in the home region us and the remote region eu
// (overflow-threshold 5, home-region us):
//
//  1. Only the eu consumer runs and a batch of 12 arrives: eu is served
//     while 5 or more jobs wait, so it runs exactly 12-5+1 = 8 and leaves 4
//     waiting, which it never takes.
//  2. The us consumer starts and takes those 4 at once (home pulls
//     whatever the backlog).
//  3. Jobs submitted one at a time (a backlog of 1) all run in us although
//     eu is running and idle.
//
// Every job is answered exactly once; each record and the history entry of
// its answer name the region and worker that ran it; GetStatus lists the
// workers of both regions.
func TestRegionOverflowRemoteOnlyPastThreshold(t *testing.T) {
	const (
		threshold = 5
		batch     = 12
		trickle   = 5
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := newRegionEnv(t, ctx, []string{"us", "eu"}, []int{1, 1}, "--cluster", "us",
		"--overflow-threshold", "5", "--home-region", "us")
	bridge := e.bridgeIn(t, ctx, "us")
	eu := e.consumerIn(t, ctx, "eu")
	grpcAddr := freeAddr(t)
	e.in("eu")
	ctl := startProc(t, "control-eu", nil, append([]string{"control", "--region", "eu", "--grpc-addr", grpcAddr}, e.common...)...)
	rec := recordAcceptance(ctx, t, e.natsURL)

	// The job consumers carry the policy.
	info := waitJobConsumer(ctx, t, e.natsURL, certdv1.Action_ACTION_CREATE, func(*jetstream.ConsumerInfo) bool { return true })
	if info.Config.PriorityPolicy != jetstream.PriorityPolicyOverflow || len(info.Config.PriorityGroups) != 1 {
		t.Fatalf("job consumer: priority policy %v, groups %v; want overflow with one group", info.Config.PriorityPolicy, info.Config.PriorityGroups)
	}

	// 1. eu alone.
	ids := e.submitJobs(batch)
	if err := eu.out.waitFor(ctx, "job done", batch-threshold+1); err != nil {
		t.Fatal(err)
	}
	waitJobConsumer(ctx, t, e.natsURL, certdv1.Action_ACTION_CREATE, func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumPending == threshold-1 && ci.NumAckPending == 0
	})
	if got := len(e.xs.Callbacks()); got > batch-threshold+1 {
		t.Fatalf("%d answered with eu alone; want at most %d", got, batch-threshold+1)
	}

	// 2. us starts and takes what is left.
	us := e.consumerIn(t, ctx, "us")
	if _, err := e.xs.WaitCallbacks(ctx, batch); err != nil {
		t.Fatal(err)
	}
	byRegion := jobRegions(ctx, t, e.natsURL)
	t.Logf("OVERFLOW batch of %d, threshold %d: jobs by region %v", batch, threshold, byRegion)
	if byRegion["eu"] != batch-threshold+1 || byRegion["us"] != threshold-1 {
		t.Errorf("jobs by region %v; want eu %d (served while %d or more waited), us %d", byRegion, batch-threshold+1, threshold, threshold-1)
	}

	// 3. A trickle: one job at a time, answered before the next.
	for i := range trickle {
		ids = append(ids, e.submitJobs(1)...)
		if _, err := e.xs.WaitCallbacks(ctx, batch+i+1); err != nil {
			t.Fatal(err)
		}
	}
	byRegion = jobRegions(ctx, t, e.natsURL)
	t.Logf("OVERFLOW after a trickle of %d: jobs by region %v", trickle, byRegion)
	if byRegion["eu"] != batch-threshold+1 || byRegion["us"] != threshold-1+trickle {
		t.Errorf("jobs by region %v; want the trickle all in us (eu %d, us %d)", byRegion, batch-threshold+1, threshold-1+trickle)
	}

	// GetStatus and the records show where each job ran.
	waitWorkers(ctx, t, e.natsURL, func(ws []*certdv1.Worker) bool {
		return hasWorker(ws, "consumer", "us") && hasWorker(ws, "consumer", "eu")
	})
	st, err := controlClient(t, grpcAddr).GetStatus(ctx, &certdv1.GetStatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ role, region string }{{"consumer", "us"}, {"consumer", "eu"}, {"bridge", "us"}, {"control", "eu"}} {
		if !hasWorker(st.Workers, w.role, w.region) {
			t.Errorf("GetStatus does not list the %s in %s; workers: %v", w.role, w.region, st.Workers)
		}
	}
	stopAll(t, bridge, us, eu, ctl)
	e.checkExactlyOnce(ctx, t, rec, ids)
	checkRanWhere(ctx, t, e.natsURL, map[string]string{"eu": workerOf(t, eu), "us": workerOf(t, us)})
}

// checkRanWhere asserts that every job's record names the region of the
// worker that ran it, and that the history entry of its answer
// (RESULT_READY, written by that worker) names the same worker and region.
// Call it once the bridges have stopped: a callback reaches the LMS before
// the bridge records the job as answered. workers maps region to worker id.
func checkRanWhere(ctx context.Context, t *testing.T, natsURL string, workers map[string]string) {
	t.Helper()
	kv, err := jetStreamAt(t, natsURL).KeyValue(ctx, pipeline.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	err = pipeline.NewRecords(kv).Scan(ctx, func(rec *certdv1.JobRecord) bool {
		if rec.State != certdv1.JobState_JOB_STATE_ANSWERED {
			t.Errorf("job %s: state %s, want answered", rec.Id, rec.State)
		}
		if want, ok := workers[rec.Region]; !ok || rec.Worker != want {
			t.Errorf("job %s: ran on %q in region %q; workers by region %v", rec.Id, rec.Worker, rec.Region, workers)
		}
		var answer *certdv1.StateChange
		for _, h := range rec.History {
			if h.State == certdv1.JobState_JOB_STATE_RESULT_READY {
				answer = h
			}
		}
		if answer == nil || answer.Region != rec.Region || answer.Worker != rec.Worker {
			t.Errorf("job %s (ran in %s): RESULT_READY history entry %v does not name its worker and region; history %v", rec.Id, rec.Region, answer, rec.History)
		}
		return true
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// The regional preference needs to know the home region: overflow-threshold
// without home-region or cluster stops a process at start, naming the
// setting.
func TestRegionOverflowNeedsHomeRegion(t *testing.T) {
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := runCmd(ctx, "bridge", "--nats-url", startNATS(t), "--overflow-threshold", "5")
	if r.code == 0 || !strings.Contains(r.stderr, "home-region") || !strings.Contains(r.stderr, "CERTD_HOME_REGION") {
		t.Errorf("certd bridge --overflow-threshold 5 without home-region: exit %d\n%s", r.code, r.stderr)
	}
}
