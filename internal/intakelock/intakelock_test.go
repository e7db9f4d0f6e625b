package intakelock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/intakelock"
	"github.com/certd-dev/certd/internal/natsserver"
)

type node struct {
	nc   *nats.Conn
	kv   jetstream.KeyValue
	lock *intakelock.Lock
	js   jetstream.JetStream
}

func start(t *testing.T) string {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

func newNode(t *testing.T, url, id string, ttl time.Duration) *node {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := intakelock.OpenBucket(ctx, js, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &node{nc: nc, kv: kv, js: js, lock: intakelock.New(kv, "certificates", id, "r1", ttl, nil)}
}

// tenures runs the lock and reports each tenure's start and end; it checks
// that tenures of all nodes never overlap.
type tenures struct {
	mu      sync.Mutex
	active  atomic.Int32
	overlap atomic.Bool
	started chan string
}

func (tn *tenures) work(id string) func(ctx context.Context) {
	return func(ctx context.Context) {
		if tn.active.Add(1) > 1 {
			tn.overlap.Store(true)
		}
		tn.started <- id
		<-ctx.Done()
		tn.active.Add(-1)
	}
}

func run(t *testing.T, n *node, tn *tenures, id string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.lock.Run(ctx, tn.work(id)); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("%s: %v", id, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitStart(t *testing.T, tn *tenures, want string) time.Duration {
	t.Helper()
	t0 := time.Now()
	select {
	case got := <-tn.started:
		if got != want {
			t.Fatalf("%s holds the lock, want %s", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never took the lock", want)
	}
	return time.Since(t0)
}

// TestOneHolderAndCleanHandover: of two bridges only one holds the lock;
// when it stops cleanly it releases and the standby takes over at once;
// GetStatus's view (Holders) names the holder.
func TestOneHolderAndCleanHandover(t *testing.T) {
	url := start(t)
	const ttl = time.Hour // without a release b would wait an hour (and the test time out)
	a, b := newNode(t, url, "a", ttl), newNode(t, url, "b", ttl)
	tn := &tenures{started: make(chan string, 4)}
	stopA := run(t, a, tn, "a")
	waitStart(t, tn, "a")
	run(t, b, tn, "b")
	hs, err := intakelock.Holders(context.Background(), a.js)
	if err != nil || len(hs) != 1 || hs[0].ID != "a" || hs[0].Queue != "certificates" {
		t.Fatalf("holders %+v, %v; want a", hs, err)
	}
	if b.lock.Holding() {
		t.Fatal("standby claims to hold the lock")
	}
	stopA()
	took := waitStart(t, tn, "b")
	t.Logf("clean takeover after %v", took)
	if tn.overlap.Load() {
		t.Error("two tenures overlapped")
	}
}

// TestCrashedHolderTakenOver: a holder that vanishes without releasing is
// taken over once the standby has seen its lock unchanged for a full TTL,
// and the crashed holder's own tenure ended before that (no overlap).
func TestCrashedHolderTakenOver(t *testing.T) {
	url := start(t)
	const ttl = time.Second
	a, b := newNode(t, url, "a", ttl), newNode(t, url, "b", ttl)
	tn := &tenures{started: make(chan string, 4)}
	run(t, a, tn, "a")
	waitStart(t, tn, "a")
	run(t, b, tn, "b")
	a.nc.Close() // no renewal, no release
	took := waitStart(t, tn, "b")
	t.Logf("takeover after a crash: %v (TTL %v)", took, ttl)
	if tn.overlap.Load() {
		t.Error("the crashed holder was still working when the standby took over")
	}
}

// TestStolenLockStopsWork: a holder whose key was overwritten stops at its
// next renewal.
func TestStolenLockStopsWork(t *testing.T) {
	url := start(t)
	const ttl = 900 * time.Millisecond
	a := newNode(t, url, "a", ttl)
	tn := &tenures{started: make(chan string, 4)}
	run(t, a, tn, "a")
	waitStart(t, tn, "a")
	if _, err := a.kv.Put(context.Background(), intakelock.Key("certificates"), []byte(`{"id":"intruder"}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for tn.active.Load() != 0 || a.lock.Holding() {
		select {
		case <-ctx.Done():
			t.Fatal("holder kept working after its lock was overwritten")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stallingKV is a lock bucket whose renewals (Update) stop returning once
// stall is set, until release is closed: a stalled NATS client, or a
// renewing goroutine that does not get to run.
type stallingKV struct {
	jetstream.KeyValue
	stall   atomic.Bool
	release chan struct{}
}

func (s *stallingKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	if s.stall.Load() {
		<-s.release
		return 0, errors.New("stalled")
	}
	return s.KeyValue.Update(ctx, key, value, last)
}

// TestStalledRenewalStillLapses: a holder whose renewal call hangs must
// still stop working when its tenure lapses, before a standby (which sees
// the lock unchanged for a TTL) takes over; the lapse must not wait for
// the renewal to return.
func TestStalledRenewalStillLapses(t *testing.T) {
	url := start(t)
	const ttl = time.Second
	a, b := newNode(t, url, "a", ttl), newNode(t, url, "b", ttl)
	kv := &stallingKV{KeyValue: a.kv, release: make(chan struct{})}
	a.lock = intakelock.New(kv, "certificates", "a", "r1", ttl, nil)
	tn := &tenures{started: make(chan string, 4)}
	run(t, a, tn, "a")
	t.Cleanup(func() { close(kv.release) }) // runs before a is stopped
	waitStart(t, tn, "a")
	kv.stall.Store(true)
	run(t, b, tn, "b")
	took := waitStart(t, tn, "b")
	t.Logf("takeover from a stalled holder after %v (TTL %v)", took, ttl)
	if tn.overlap.Load() {
		t.Error("the holder whose renewal stalled was still working when the standby took over")
	}
}
