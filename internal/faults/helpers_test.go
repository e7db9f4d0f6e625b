package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/storage/s3test"
	"github.com/certd-dev/certd/internal/faults"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// batchEnv is certd in-process (bridge and consumers on an embedded NATS
// server) with the xqueue stand-in, and a Recorder watching job records.
type batchEnv struct {
	*testenv.Env
	xs  *xqueuetest.Server
	xq  *xqueue.Client
	rec *faults.Recorder
	ctx context.Context
}

func newBatchEnv(t *testing.T, timeout time.Duration, opts pipeline.Options) *batchEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	env := testenv.Start(t, opts)
	xs, xq := env.XQueue(t)
	rec, err := faults.Record(ctx, env.P.Records)
	if err != nil {
		t.Fatal(err)
	}
	return &batchEnv{Env: env, xs: xs, xq: xq, rec: rec, ctx: ctx}
}

func (e *batchEnv) runBridge(t *testing.T) (stop func()) {
	return e.RunBridge(t, bridge.WithXQueue(e.xq))
}

func (e *batchEnv) runConsumer(t *testing.T, h consumer.JobHandler, opts ...consumer.Option) (stop func()) {
	return e.RunConsumer(t, nil, h, opts...)
}

// submit puts n create jobs on the stand-in, as the LMS sends them.
func submit(t *testing.T, xs *xqueuetest.Server, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		b, err := json.Marshal(map[string]any{"action": "create", "username": fmt.Sprintf("learner%d", i),
			"course_id": "course-v1:edX+DemoX+Demo_Course", "course_name": "Demonstration Course",
			"name": fmt.Sprintf("Learner Number %d", i), "grade": "Pass"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = xs.Submit(string(b))
	}
	return ids
}

// check runs the checker over the env's file store and fails the test
// unless the batch was answered exactly once; it returns the report.
func (e *batchEnv) check(t *testing.T, ids []int64, store faults.Lister) faults.Report {
	t.Helper()
	if store == nil {
		store = e.Store
	}
	rep, err := faults.Check(e.ctx, faults.Batch{IDs: ids, Accepted: e.rec, XQueue: e.xs, Store: store, PublicKey: e.Signer.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FAULT TABLE %s: %s", t.Name(), rep.Row())
	if !rep.OK() {
		t.Errorf("batch not answered exactly once: %s\n%v", rep.Row(), rep.Problems)
	}
	return rep
}
