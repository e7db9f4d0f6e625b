package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func open(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pipeline.Open(ctx, nc, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Opening again (another process starting) must work and change nothing.
	if _, err := pipeline.Open(ctx, nc, pipeline.Options{}); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	return p
}

// TestCreateIsTheDedupe: only the first Create of an id wins; later ones
// get the stored record back untouched.
func TestCreateIsTheDedupe(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	const racers = 8
	var wg sync.WaitGroup
	wins := make(chan string, racers)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := &certdv1.JobRecord{Id: "xq-7", DownloadUuid: lms.NewUUID(), State: certdv1.JobState_JOB_STATE_ACCEPTED}
			created, existing, err := p.Records.Create(ctx, rec)
			if err != nil {
				t.Error(err)
				return
			}
			if created {
				wins <- rec.DownloadUuid
			} else if existing == nil || existing.DownloadUuid == rec.DownloadUuid {
				t.Errorf("loser got %v", existing)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winners []string
	for w := range wins {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("%d creates won", len(winners))
	}
	got, err := p.Records.Get(ctx, "xq-7")
	if err != nil || got.DownloadUuid != winners[0] {
		t.Fatalf("stored %v, %v; want the winner's uuid", got, err)
	}
}

// TestConcurrentUpdatesAreNotLost: compare-and-set retries mean no update
// overwrites another.
func TestConcurrentUpdatesAreNotLost(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	if _, _, err := p.Records.Create(ctx, &certdv1.JobRecord{Id: "sub-x"}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := p.Records.Update(ctx, "sub-x", func(r *certdv1.JobRecord) error {
					r.Attempts++
					return nil
				}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	rec, err := p.Records.Get(ctx, "sub-x")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != writers*each {
		t.Errorf("attempts %d, want %d: updates were lost", rec.Attempts, writers*each)
	}
	if _, err := p.Records.Update(ctx, "nope", func(*certdv1.JobRecord) error { return nil }); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("update of a missing record: %v", err)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	p := open(t)
	rec := &certdv1.JobRecord{Id: "j"}
	p.Records.Transition(rec, certdv1.JobState_JOB_STATE_ACCEPTED, "first", "", "")
	for i := 0; i < 500; i++ {
		p.Records.Transition(rec, certdv1.JobState_JOB_STATE_RETRYING, "", "", "")
	}
	if n := len(rec.History); n > 64 || rec.History[0].Note != "first" {
		t.Errorf("history has %d entries, first %q", n, rec.History[0].Note)
	}
}

func TestScanAndWatch(t *testing.T) {
	p := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := p.Records.Create(ctx, &certdv1.JobRecord{Id: id}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	if err := p.Records.Scan(ctx, func(r *certdv1.JobRecord) bool { ids = append(ids, r.Id); return true }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Errorf("scan saw %v", ids)
	}
	updates, err := p.Records.Watch(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Records.Update(ctx, "b", func(r *certdv1.JobRecord) error {
		p.Records.Transition(r, certdv1.JobState_JOB_STATE_DEAD, "", "", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-updates:
		if r.Id != "b" || r.State != certdv1.JobState_JOB_STATE_DEAD {
			t.Errorf("watch got %s %s", r.Id, r.State)
		}
	case <-ctx.Done():
		t.Fatal("no update seen")
	}
}

func TestIntakeSwitch(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	st, err := p.Intake(ctx)
	if err != nil || st.Paused {
		t.Fatalf("default intake %v, %v; want running", st, err)
	}
	if err := p.SetIntake(ctx, &certdv1.IntakeStatus{Paused: true, Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Intake(ctx); !st.Paused || st.Reason != "maintenance" {
		t.Errorf("intake %v", st)
	}
}

// TestOnlyJobRunnersSetJobConsumerSettings: a bridge or control process
// opening the pipeline with defaults does not reset the ack wait the
// consumers were configured with.
func TestOnlyJobRunnersSetJobConsumerSettings(t *testing.T) {
	p := open(t)
	ctx := context.Background()
	ackWait := func() time.Duration {
		c, err := p.JS.Consumer(ctx, pipeline.JobsStream, pipeline.ConsumerName(certdv1.Action_ACTION_CREATE))
		if err != nil {
			t.Fatal(err)
		}
		return c.CachedInfo().Config.AckWait
	}
	if _, err := pipeline.Open(ctx, p.NC, pipeline.Options{AckWait: 7 * time.Second, UpdateJobConsumers: true}); err != nil {
		t.Fatal(err)
	}
	if got := ackWait(); got != 7*time.Second {
		t.Fatalf("consumer process set ack wait %v, want 7s", got)
	}
	if _, err := pipeline.Open(ctx, p.NC, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := ackWait(); got != 7*time.Second {
		t.Errorf("a non-consumer process reset the ack wait to %v", got)
	}
}
