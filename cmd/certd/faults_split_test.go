package main

// Faults against certd split into processes (issue: every job exactly
// once through every fault). Each test ends with faults.Check: one success
// callback per submission with the uuids of its acceptance, no orphaned
// files, every PDF verified by gpg.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/faults"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
)

// recordAcceptance starts a faults.Recorder on the job records bucket at
// natsURL; call it once a process has opened the pipeline and before the
// first submission.
func recordAcceptance(ctx context.Context, t *testing.T, natsURL string) *faults.Recorder {
	t.Helper()
	js := jetStreamAt(t, natsURL)
	kv, err := js.KeyValue(ctx, pipeline.JobsBucket)
	if err != nil {
		t.Fatalf("job records bucket: %v", err)
	}
	rec, err := faults.Record(ctx, pipeline.NewRecords(kv))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkExactlyOnce runs the fault checker over the shared file storage.
func (e *splitEnv) checkExactlyOnce(ctx context.Context, t *testing.T, rec *faults.Recorder, ids []int64) faults.Report {
	t.Helper()
	st, err := storage.Open(ctx, "file://"+e.www)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := faults.Check(ctx, faults.Batch{IDs: ids, Accepted: rec, XQueue: e.xs, Store: st, PublicKey: e.pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FAULT TABLE %s: %s", t.Name(), rep.Row())
	if !rep.OK() {
		t.Errorf("not exactly once: %s\n%v", rep.Row(), rep.Problems)
	}
	return rep
}

// restartableNATS is a JetStream server with file storage that can be
// shut down and started again on the same port and store directory.
type restartableNATS struct {
	dir  string
	port int
	s    *server.Server
}

func startRestartableNATS(t *testing.T) *restartableNATS {
	t.Helper()
	n := &restartableNATS{dir: t.TempDir(), port: freePort(t)}
	n.start(t)
	t.Cleanup(func() {
		if n.s != nil {
			n.s.Shutdown()
			n.s.WaitForShutdown()
		}
	})
	return n
}

func (n *restartableNATS) start(t *testing.T) {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: n.dir, Port: n.port})
	if err != nil {
		t.Fatalf("start NATS on port %d: %v", n.port, err)
	}
	n.s = s
}

func (n *restartableNATS) stop() {
	n.s.Shutdown()
	n.s.WaitForShutdown()
	n.s = nil
}

func (n *restartableNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// Fault 5: the NATS server (file storage) is restarted in the middle of a
// batch. The bridge and both consumers reconnect and keep running; the
// batch completes exactly once and every process still stops with exit 0.
func TestFaultSplitNATSRestart(t *testing.T) {
	const n = 30
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := startRestartableNATS(t)
	e := newSplitEnv(t, ctx, "--ack-wait", "3s")
	e.natsURL = ns.url()
	e.common = []string{"--nats-url", ns.url(), "--ack-wait", "3s"}
	bridge := e.startBridge(t)
	cons := []*proc{e.startConsumer(t, "us-east"), e.startConsumer(t, "eu-west")}
	for _, p := range append([]*proc{bridge}, cons...) {
		if err := p.out.waitFor(ctx, "started", 1); err != nil {
			t.Fatal(err)
		}
	}
	rec := recordAcceptance(ctx, t, ns.url())
	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, 1); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	ns.stop()
	answeredBefore := len(e.xs.Callbacks())
	if err := bridge.out.waitFor(ctx, "NATS disconnected", 1); err != nil {
		t.Fatal(err)
	}
	ns.start(t)
	if answeredBefore == n {
		t.Fatalf("the batch finished before NATS stopped; the test proves nothing")
	}
	for _, p := range append([]*proc{bridge}, cons...) {
		if err := p.out.waitFor(ctx, "NATS reconnected", 1); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("NATS down for %s; %d of %d answered before", time.Since(down).Round(time.Millisecond), answeredBefore, n)
	// The recorder's own connection reconnects too; records written while
	// it was away are only checked for uuids, which it saw at acceptance.
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("batch done %s after NATS stopped", time.Since(down).Round(time.Millisecond))
	for _, p := range append([]*proc{bridge}, cons...) {
		if code, err := p.stop(20 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit %d, %v", p.name, code, err)
		}
	}
	e.checkExactlyOnce(ctx, t, rec, ids)
}

// Fault 8: the bridge process is killed (SIGKILL) while xqueue is calling
// the LMS for its put_results, that is between put_result and recording
// the outcome. A new bridge finds the claims and must not post them again;
// submissions whose post never left are offered again by xqueue after its
// lease and answered then. Every submission gets exactly one callback.
func TestFaultSplitBridgeKilledAfterPut(t *testing.T) {
	const n = 8
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newSplitEnv(t, ctx, "--ack-wait", "2s")
	e.xs.Close()
	e.xs = xqueuetest.NewServer(xqueuetest.WithUser(splitXQueueUser, splitXQueuePassword),
		xqueuetest.WithLMSLatency(1500*time.Millisecond), xqueuetest.WithLease(4*time.Second))
	t.Cleanup(e.xs.Close)
	victim := e.startBridge(t)
	cons := e.startConsumer(t, "us-east")
	for _, p := range []*proc{victim, cons} {
		if err := p.out.waitFor(ctx, "started", 1); err != nil {
			t.Fatal(err)
		}
	}
	rec := recordAcceptance(ctx, t, e.natsURL)
	ids := e.submitJobs(n)
	// xqueue has accepted a put_result and is calling the LMS: the bridge
	// is waiting for the answer and has not recorded anything yet.
	if _, err := e.xs.WaitStats(ctx, func(s xqueuetest.Stats) bool { return s.Accepted >= 1 }); err != nil {
		t.Fatal(err)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killed := time.Now()
	inFlight := e.xs.Stats().Accepted
	survivor := e.startBridge(t)
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("bridge killed with %d put_results in flight; the batch finished %s later", inFlight, time.Since(killed).Round(time.Millisecond))
	for _, p := range []*proc{survivor, cons} {
		if code, err := p.stop(20 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit %d, %v", p.name, code, err)
		}
	}
	e.checkExactlyOnce(ctx, t, rec, ids)
	if st := e.xs.Stats(); st.Callbacks != n {
		t.Errorf("xqueue made %d LMS callbacks, want %d", st.Callbacks, n)
	}
}
