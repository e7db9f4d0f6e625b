package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// countingKV counts the writes made to the job records bucket: those
// that stored something, and all tries (a compare-and-set conflict is a
// round trip too).
type countingKV struct {
	jetstream.KeyValue
	writes, tries, reads atomic.Int64
}

func (c *countingKV) Get(ctx context.Context, k string) (jetstream.KeyValueEntry, error) {
	c.reads.Add(1)
	return c.KeyValue.Get(ctx, k)
}

func (c *countingKV) count(rev uint64, err error) (uint64, error) {
	c.tries.Add(1)
	if err == nil {
		c.writes.Add(1)
	}
	return rev, err
}

func (c *countingKV) Put(ctx context.Context, k string, v []byte) (uint64, error) {
	return c.count(c.KeyValue.Put(ctx, k, v))
}

func (c *countingKV) Create(ctx context.Context, k string, v []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return c.count(c.KeyValue.Create(ctx, k, v, opts...))
}

func (c *countingKV) Update(ctx context.Context, k string, v []byte, rev uint64) (uint64, error) {
	return c.count(c.KeyValue.Update(ctx, k, v, rev))
}

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
	counter := &countingKV{KeyValue: kv}
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
	per := float64(counter.writes.Load()) / n
	t.Logf("record writes per create job: %.2f (%.2f tries with conflicts, %.2f reads)", per,
		float64(counter.tries.Load())/n, float64(counter.reads.Load())/n)
	if per > maxWritesPerCreateJob {
		t.Errorf("a create job made %.2f record writes, want at most %d", per, maxWritesPerCreateJob)
	}
}
