package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/internal/intakelock"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// newBridge runs a bridge on its own NATS connection (as a separate
// process would) and returns it with its pipeline and stop function.
func newBridge(t *testing.T, env *testenv.Env, opts ...bridge.Option) (*bridge.Bridge, *pipeline.Pipeline, func()) {
	t.Helper()
	p := env.Connect(t)
	opts = append([]bridge.Option{bridge.WithLogger(env.Log), bridge.WithPollInterval(20 * time.Millisecond)}, opts...)
	b := bridge.New(p, opts...)
	return b, p, testenv.Run(t, func(ctx context.Context) error {
		err := b.Run(ctx)
		if err != nil && p.Conn().IsClosed() {
			return nil // a crash the test made: the bridge stops with an error naming a part
		}
		return err
	})
}

// submitN queues n LMS jobs and returns their submission ids.
func submitN(t *testing.T, xs *xqueuetest.Server, prefix string, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = xs.Submit(body(t, create(fmt.Sprintf("%s%d", prefix, i), "Jane Doe")))
	}
	return ids
}

// checkExactlyOnce waits for one callback per submission and asserts that
// each got exactly one, a success whose uuids are the ones recorded for the
// job (stable across redeliveries) and whose files exist and verify.
func checkExactlyOnce(t *testing.T, ctx context.Context, env *testenv.Env, xs *xqueuetest.Server, ids []int64) {
	t.Helper()
	if err := xs.Wait(ctx, func() bool {
		for _, id := range ids {
			if xs.CallbackCount(id) == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("not every submission was answered: %v", err)
	}
	dup := 0
	answered := map[string]bool{}
	for _, id := range ids {
		cbs := xs.CallbacksFor(id)
		if len(cbs) != 1 {
			dup += len(cbs) - 1
			t.Errorf("submission %d: %d LMS callbacks, want 1", id, len(cbs))
			continue
		}
		a := decode(t, cbs[0])
		if a.Error != "" {
			t.Errorf("submission %d answered with an error: %+v", id, a)
			continue
		}
		rec, err := env.P.Records.Get(ctx, fmt.Sprintf("xq-%d", id))
		if err != nil {
			t.Fatal(err)
		}
		if rec.DownloadUuid != a.DownloadUUID || rec.VerifyUuid != a.VerifyUUID {
			t.Errorf("submission %d: answered uuids %s/%s, record has %s/%s", id, a.DownloadUUID, a.VerifyUUID, rec.DownloadUuid, rec.VerifyUuid)
		}
		checkFiles(t, env, a)
		answered["downloads/"+a.DownloadUUID], answered["cert/"+a.VerifyUUID] = true, true
	}
	orphans := 0
	for _, dir := range []string{"downloads", "cert"} {
		entries, err := os.ReadDir(filepath.Join(env.StoreDir, dir))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			if dir == "cert" && e.Name() == "keys" { // the public signing keys
				continue
			}
			if !answered[dir+"/"+e.Name()] {
				orphans++
				t.Errorf("orphaned files: %s/%s belongs to no answer", dir, e.Name())
			}
		}
	}
	st := xs.Stats()
	t.Logf("answered %d, duplicates %d, orphans %d, put_results %d (accepted %d, refused %d), pulls %d, max pulls in flight %d, lost leases %d, unretired %d",
		len(ids), dup, orphans, st.PutResults, st.Accepted, st.Rejected, st.Pulls, st.MaxPullsInFlight, st.LostLeases, st.Unretired)
}

// TestTwoBridgesOnePuller: two bridges against one queue, with xqueue's
// race window widened. Only the lock holder pulls, one get_submission at a
// time, so xqueue never hands one submission out twice and every
// submission gets exactly one LMS callback.
func TestTwoBridgesOnePuller(t *testing.T) {
	var xs *xqueuetest.Server
	var once sync.Once
	// The first pull waits in its window for a second one (which only a
	// bypassed lock lets in), and every pull dawdles a little.
	hook := func(ctx context.Context, _ int64) {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			_, _ = xs.WaitStats(ctx, func(st xqueuetest.Stats) bool { return st.MaxPullsInFlight >= 2 })
		})
	}
	env, xs0, xq := setup(t, xqueuetest.WithPullDelay(5*time.Millisecond), xqueuetest.WithPullHook(hook))
	xs = xs0
	env.RunConsumer(t, nil, nil)
	ids := submitN(t, xs, "two", 24)
	newBridge(t, env, bridge.WithXQueue(xq))
	newBridge(t, env, bridge.WithXQueue(xq))
	checkExactlyOnce(t, waitCtx(t), env, xs, ids)
	if st := xs.Stats(); st.MaxPullsInFlight != 1 || st.LostLeases != 0 || st.Unretired != 0 {
		t.Errorf("xqueue saw %d pulls at once, %d submissions under two keys, %d un-retired; want 1, 0, 0",
			st.MaxPullsInFlight, st.LostLeases, st.Unretired)
	}
}

// TestTwoBridgesWithoutLockRace shows that TestTwoBridgesOnePuller's
// assertions catch a bypassed lock: without it two bridges pull at once
// and xqueue hands one submission out under two keys.
func TestTwoBridgesWithoutLockRace(t *testing.T) {
	var xs *xqueuetest.Server
	var once sync.Once
	hook := func(ctx context.Context, _ int64) {
		once.Do(func() { // hold the first pull until a second one is in flight
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, _ = xs.WaitStats(ctx, func(st xqueuetest.Stats) bool { return st.MaxPullsInFlight >= 2 })
		})
	}
	env, xs0, xq := setup(t, xqueuetest.WithPullHook(hook))
	xs = xs0
	env.RunConsumer(t, nil, nil)
	submitN(t, xs, "nolock", 4)
	newBridge(t, env, bridge.WithXQueue(xq), bridge.WithoutIntakeLock())
	newBridge(t, env, bridge.WithXQueue(xq), bridge.WithoutIntakeLock())
	st, err := xs.WaitStats(waitCtx(t), func(st xqueuetest.Stats) bool { return st.LostLeases >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxPullsInFlight < 2 {
		t.Errorf("max pulls in flight %d, want >= 2 without the lock", st.MaxPullsInFlight)
	}
}

// holderWatch reports every change of the intake lock's holder.
func holderWatch(t *testing.T, ctx context.Context, p *pipeline.Pipeline) <-chan string {
	t.Helper()
	kv, err := p.IntakeLockBucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, intakelock.Key("certificates"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 64)
	go func() {
		defer func() { _ = w.Stop() }()
		last := ""
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-w.Updates():
				if e == nil {
					continue
				}
				id := ""
				if e.Operation() == jetstream.KeyValuePut {
					var h struct {
						ID string `json:"id"`
					}
					_ = json.Unmarshal(e.Value(), &h)
					id = h.ID
				}
				if id != last {
					last = id
					select {
					case out <- id:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out
}

func waitHolder(t *testing.T, ctx context.Context, ch <-chan string, want string) {
	t.Helper()
	for {
		select {
		case id := <-ch:
			if id == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s never held the intake lock: %v", want, ctx.Err())
		}
	}
}

// TestTakeover: the puller stops (cleanly, then by crashing) and the
// standby takes the intake over; jobs submitted before and after are each
// answered once. The takeover times are logged.
func TestTakeover(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "clean stop", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			const ttl = time.Second
			env, xs, xq := setup(t)
			env.RunConsumer(t, nil, nil)
			ctx := waitCtx(t)
			holders := holderWatch(t, ctx, env.P)
			a, pa, stopA := newBridge(t, env, bridge.WithXQueue(xq), bridge.WithIntakeLockTTL(ttl))
			waitHolder(t, ctx, holders, a.ID())
			b, _, _ := newBridge(t, env, bridge.WithXQueue(xq), bridge.WithIntakeLockTTL(ttl))
			ids := submitN(t, xs, "before", 5)
			checkExactlyOnce(t, ctx, env, xs, ids)

			t0 := time.Now()
			if crash {
				pa.Conn().Close() // no renewal, no release: the process is gone
			} else {
				stopA()
			}
			waitHolder(t, ctx, holders, b.ID())
			took := time.Since(t0)
			// After a crash the standby waits until it has seen the lock
			// unchanged for a full TTL, counted from the holder's last
			// renewal: between TTL*2/3 and TTL after the crash.
			t.Logf("takeover after %s: %v (lock TTL %v)", name, took, ttl)
			ids = append(ids, submitN(t, xs, "after", 5)...)
			checkExactlyOnce(t, ctx, env, xs, ids)
			if st := xs.Stats(); st.MaxPullsInFlight != 1 {
				t.Errorf("%d pulls at once, want 1", st.MaxPullsInFlight)
			}
			stopA()
		})
	}
}

// slowHandler makes each job take at least d (work, not synchronisation).
type slowHandler struct {
	h interface {
		Handle(context.Context, *certdv1.Job) (*certdv1.Result, error)
	}
	d time.Duration
}

func (s slowHandler) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.h.Handle(ctx, job)
}
