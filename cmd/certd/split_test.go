package main

// certd split into processes, as deployed: a separate NATS server (here in
// the test process), an xqueue (the stand-in), and the certd binary run as
// `bridge`, two `consumer`s in different regions sharing file storage, and
// `control`.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

const (
	splitXQueueUser     = "certd"
	splitXQueuePassword = "Split-Xq-Secret-5521"
	downloadBase        = "https://certs.example.test"
)

// splitEnv is what the split-process tests share.
type splitEnv struct {
	natsURL string
	xs      *xqueuetest.Server
	www     string // shared file storage
	key     string // private key made by certd keygen
	credKey string // credential key made by certd keygen --credential
	pub     []byte
	common  []string // settings every certd process gets
}

func newSplitEnv(t *testing.T, ctx context.Context, extra ...string) *splitEnv {
	t.Helper()
	clearCertdEnv(t)
	certdBinary(t) // build before starting the clock of anything
	dir := t.TempDir()
	e := &splitEnv{natsURL: startNATS(t)}
	e.xs = xqueuetest.NewServer(xqueuetest.WithUser(splitXQueueUser, splitXQueuePassword))
	t.Cleanup(e.xs.Close)
	e.www = filepath.Join(dir, "www")
	if err := os.Mkdir(e.www, 0o755); err != nil {
		t.Fatal(err)
	}
	var pub string
	e.key, pub = keygen(t, ctx, filepath.Join(dir, "key"), "Split Test Signer")
	var err error
	if e.pub, err = os.ReadFile(pub); err != nil {
		t.Fatal(err)
	}
	e.credKey = credentialKeygen(t, ctx, filepath.Join(dir, "key"))
	e.common = append([]string{"--nats-url", e.natsURL}, extra...)
	return e
}

func (e *splitEnv) startBridge(t *testing.T) *proc {
	args := append([]string{"bridge", "--region", "us-east", "--xqueue-url", e.xs.URL(), "--xqueue-user", splitXQueueUser, "--poll-interval", "20ms"}, e.common...)
	return startProc(t, "bridge", []string{"CERTD_XQUEUE_PASSWORD=" + splitXQueuePassword}, args...)
}

func (e *splitEnv) startConsumer(t *testing.T, region string) *proc {
	args := append([]string{"consumer", "--region", region, "--storage", "file://" + e.www,
		"--signing-key", e.key, "--credential-key", e.credKey, "--download-url", downloadBase, "--workers", "2", "--retry-delay", "100ms"}, e.common...)
	return startProc(t, "consumer-"+region, nil, args...)
}

func (e *splitEnv) startControl(t *testing.T, addr string) *proc {
	args := append([]string{"control", "--region", "us-east", "--grpc-addr", addr}, e.common...)
	return startProc(t, "control", nil, args...)
}

// submitJobs submits n create jobs to the stand-in and returns their ids.
func (e *splitEnv) submitJobs(n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = e.xs.Submit(fmt.Sprintf(`{"action": "create", "username": "learner%d", "course_id": "course-v1:edX+DemoX+Demo_Course", "course_name": "Demonstration Course", "name": "Learner Number %d", "grade": "Pass"}`, i, i))
	}
	return ids
}

// lmsAnswer is the success body certd posts back.
type lmsAnswer struct {
	Action       string `json:"action"`
	DownloadUUID string `json:"download_uuid"`
	VerifyUUID   string `json:"verify_uuid"`
	Username     string `json:"username"`
	URL          string `json:"url"`
	Error        string `json:"error"`
	ErrorReason  string `json:"error_reason"`
}

// checkAnsweredOnce asserts every submission got exactly one LMS callback
// with a success answer whose files verify with GnuPG.
func (e *splitEnv) checkAnsweredOnce(t *testing.T, ids []int64) {
	t.Helper()
	gpg := newGPGKeyring(t, e.pub)
	for i, id := range ids {
		cbs := e.xs.CallbacksFor(id)
		if len(cbs) != 1 {
			t.Errorf("submission %d: %d LMS callbacks, want exactly 1", id, len(cbs))
			continue
		}
		var a lmsAnswer
		if err := cbs[0].Decode(&a); err != nil {
			t.Error(err)
			continue
		}
		if a.Error != "" || a.Username != fmt.Sprintf("learner%d", i) || a.URL != downloadBase+"/downloads/"+a.DownloadUUID+"/Certificate.pdf" {
			t.Errorf("submission %d: answer %s", id, cbs[0].Body)
			continue
		}
		if err := gpg.verify(e.www, a.DownloadUUID, a.VerifyUUID); err != nil {
			t.Errorf("submission %d: %v", id, err)
		}
	}
	if st := e.xs.Stats(); st.Callbacks != len(ids) || st.Accepted != len(ids) {
		t.Errorf("xqueue saw %d accepted put_results and %d callbacks, want %d each", st.Accepted, st.Callbacks, len(ids))
	}
}

// waitWorkers watches the heartbeat bucket until want(workers) holds.
func waitWorkers(ctx context.Context, t *testing.T, natsURL string, want func([]*certdv1.Worker) bool) {
	t.Helper()
	js := jetStreamAt(t, natsURL)
	kv, err := js.KeyValue(ctx, pipeline.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := map[string]*certdv1.Worker{}
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("workers never matched; last seen %v", seen)
		case entry := <-w.Updates():
			if entry == nil {
				continue
			}
			if entry.Operation() != jetstream.KeyValuePut {
				delete(seen, entry.Key())
				continue
			}
			wk := &certdv1.Worker{}
			if err := proto.Unmarshal(entry.Value(), wk); err != nil {
				continue
			}
			seen[entry.Key()] = wk
			var list []*certdv1.Worker
			for _, v := range seen {
				list = append(list, v)
			}
			if want(list) {
				return
			}
		}
	}
}

func hasWorker(ws []*certdv1.Worker, role, region string) bool {
	return slices.ContainsFunc(ws, func(w *certdv1.Worker) bool { return w.Role == role && w.Region == region })
}

// The deployed layout: bridge, two consumers in two regions and control as
// separate processes against one NATS server. Every submission is answered
// exactly once, the control service sees every process and job, and every
// process drains and exits 0 on SIGTERM.
func TestSplitProcesses(t *testing.T) {
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := newSplitEnv(t, ctx)
	grpcAddr := freeAddr(t)
	procs := []*proc{e.startBridge(t), e.startConsumer(t, "us-east"), e.startConsumer(t, "eu-west"), e.startControl(t, grpcAddr)}
	for p, line := range map[*proc]string{procs[0]: "intake started", procs[1]: "consumer started", procs[2]: "consumer started", procs[3]: "control service listening"} {
		if err := p.out.waitFor(ctx, line, 1); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("split processes: %d jobs answered in %s: %.1f jobs/s (first submit to last callback)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	// Both consumers, the bridge and control heartbeat; control reports them.
	waitWorkers(ctx, t, e.natsURL, func(ws []*certdv1.Worker) bool {
		return hasWorker(ws, "consumer", "us-east") && hasWorker(ws, "consumer", "eu-west") && hasWorker(ws, "bridge", "us-east")
	})
	cl := controlClient(t, grpcAddr)
	st, err := cl.GetStatus(ctx, &certdv1.GetStatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ role, region string }{{"consumer", "us-east"}, {"consumer", "eu-west"}, {"bridge", "us-east"}} {
		if !hasWorker(st.Workers, w.role, w.region) {
			t.Errorf("GetStatus does not list the %s in %s; workers: %v", w.role, w.region, st.Workers)
		}
	}
	jobs, err := cl.ListJobs(ctx, &certdv1.ListJobsRequest{Filter: &certdv1.JobFilter{States: []certdv1.JobState{certdv1.JobState_JOB_STATE_ANSWERED}}, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if jobs.Total != n || len(jobs.Jobs) != n {
		t.Errorf("ListJobs(answered): total %d, %d listed, want %d", jobs.Total, len(jobs.Jobs), n)
	}
	byRegion := map[string]int{}
	for _, j := range jobs.Jobs {
		byRegion[j.Region]++
		if j.AnswersPosted != 1 {
			t.Errorf("job %s: %d answers posted, want 1", j.Id, j.AnswersPosted)
		}
	}
	t.Logf("jobs by consumer region: %v", byRegion)
	for r := range byRegion {
		if r != "us-east" && r != "eu-west" {
			t.Errorf("a job ran in region %q", r)
		}
	}

	// SIGTERM: every process drains and exits 0.
	for _, p := range procs {
		_ = p.cmd.Process.Signal(os.Interrupt) // SIGINT and SIGTERM alike
	}
	for _, p := range procs {
		code, err := p.wait(20 * time.Second)
		if err != nil || code != 0 {
			t.Errorf("%s after SIGINT: exit %d, %v", p.name, code, err)
		}
	}
	e.checkAnsweredOnce(t, ids)
	if strings.Contains(procs[0].out.text(), splitXQueuePassword) {
		t.Error("the bridge printed the xqueue password")
	}
}

// Fault 1: a consumer killed with SIGKILL in the middle of its jobs: its
// unacked jobs are redelivered to another consumer after ack-wait and every
// submission is still answered exactly once (faults.Check), with no
// orphaned files.
func TestSplitProcessesConsumerKilled(t *testing.T) {
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Every process opens the pipeline and so sets ack-wait: give all the same.
	e := newSplitEnv(t, ctx, "--ack-wait", "2s")
	bridge := e.startBridge(t)
	victim := e.startConsumer(t, "us-east")
	for p, line := range map[*proc]string{bridge: "intake started", victim: "consumer started"} {
		if err := p.out.waitFor(ctx, line, 1); err != nil {
			t.Fatal(err)
		}
	}
	rec := recordAcceptance(ctx, t, e.natsURL)
	ids := e.submitJobs(n)
	// The only consumer is busy with the queue: kill it after its first job.
	if err := victim.out.waitFor(ctx, "job done", 1); err != nil {
		t.Fatal(err)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	victim.out.waitClosed()
	doneByVictim := victim.out.count("job done")
	survivor := e.startConsumer(t, "eu-west")
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{bridge, survivor} {
		if code, err := p.stop(20 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit %d, %v", p.name, code, err)
		}
	}
	e.checkAnsweredOnce(t, ids)
	e.checkExactlyOnce(ctx, t, rec, ids)
	redelivered := survivor.out.count("attempt=2")
	// checkAnsweredOnce is the assertion; the counts from the logs are for
	// the reader only (a job whose result was published just before the
	// kill is logged by neither process).
	t.Logf("victim finished %d jobs before SIGKILL; the survivor ran %d jobs, %d of them a second attempt", doneByVictim, survivor.out.count("job done"), redelivered)
}
