package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// With the regional preference on, the job consumers use the overflow
// priority policy: a remote region's pull gets nothing while the backlog
// is below the threshold and gets work once it is past it; the home
// region's pull gets work at any backlog.
func TestRegionOverflowRemoteOnlyPastThreshold(t *testing.T) {
	const threshold = 5
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	opts := pipeline.Options{UpdateJobConsumers: true, Overflow: &pipeline.Overflow{HomeRegion: "us", Threshold: threshold}}
	p, err := pipeline.Open(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := p.JS.Consumer(ctx, pipeline.JobsStream, pipeline.ConsumerName(certdv1.Action_ACTION_CREATE))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.PriorityPolicy != jetstream.PriorityPolicyOverflow || len(info.Config.PriorityGroups) != 1 {
		t.Fatalf("job consumer policy %v groups %v", info.Config.PriorityPolicy, info.Config.PriorityGroups)
	}
	publish := func(n int) {
		for range n {
			job := &certdv1.Job{Id: "sub-" + lms.NewUUID(), Action: certdv1.Action_ACTION_CREATE, Source: certdv1.Source_SOURCE_SUBMIT, AcceptedAt: timestamppb.Now()}
			if err := p.PublishJob(ctx, job); err != nil {
				t.Fatal(err)
			}
		}
	}
	group := info.Config.PriorityGroups[0]
	// fetch pulls as a remote consumer does; the server answers an
	// unsatisfied pull when its expiry passes.
	remote := func() int {
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(500*time.Millisecond),
			jetstream.FetchPriorityGroup(group), jetstream.FetchMinPending(threshold))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			_ = m.Nak() // back to the queue
		}
		return n
	}

	publish(threshold - 1)
	if n := remote(); n != 0 {
		t.Errorf("backlog %d below threshold %d: the remote region got %d jobs", threshold-1, threshold, n)
	}
	publish(threshold)
	if n := remote(); n == 0 {
		t.Errorf("backlog %d past threshold %d: the remote region got nothing", 2*threshold-1, threshold)
	}

	// The home region's pull (JobPullOpts("us")) gets work at any backlog,
	// and the remote's options are accepted by the server.
	it, err := cons.Messages(opts.JobPullOpts("us")...)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	m, err := it.Next()
	if err != nil {
		t.Fatalf("home region pull: %v", err)
	}
	_ = m.Ack()
	if len(opts.JobPullOpts("eu")) != 2 || len((pipeline.Options{}).JobPullOpts("eu")) != 0 {
		t.Error("JobPullOpts: remote regions need the group and min_pending; without a preference no options")
	}
}
