package consumer_test

import (
	"fmt"
	"testing"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// maxWritesPerCreateJob bounds the record writes of one create job on the
// happy path, from xqueue pull to the recorded answer: submit (recorded
// queued, then published), finish (the answer, stored once), claim and
// settle of the post. A first delivery does not write its start, and the
// relay posts the record's answer without writing it. Lower it when a
// change removes a write; a change that adds one fails here.
const maxWritesPerCreateJob = 4

// TestRecordWritesPerCreateJob counts the compare-and-set writes on job
// records over whole create jobs through bridge, consumer and relay.
func TestRecordWritesPerCreateJob(t *testing.T) {
	ctx := ctxFor(t)
	env := testenv.Start(t, pipeline.Options{})
	kv, err := pipelinetest.Bucket(ctx, env.P.Conn())
	if err != nil {
		t.Fatal(err)
	}
	counter := &pipelinetest.CountingKV{KeyValue: kv}
	env.P.Records = pipeline.NewRecords(counter)
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)
	const n = 8
	var ids []int64
	for i := 0; i < n; i++ {
		ids = append(ids, xs.Submit(fmt.Sprintf(`{"action":"create","username":"u%d","course_id":"course-v1:a+b+c","name":"Jane Doe"}`, i)))
	}
	if _, err := xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", id), certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(counter.Writes.Load()) / n
	t.Logf("record writes per create job: %.2f (%.2f tries with conflicts, %.2f reads)", per,
		float64(counter.Tries.Load())/n, float64(counter.Reads.Load())/n)
	if per > maxWritesPerCreateJob {
		t.Errorf("a create job made %.2f record writes, want at most %d", per, maxWritesPerCreateJob)
	}
}
