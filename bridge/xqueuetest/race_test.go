package xqueuetest

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// overlapHook holds each pull in its race window until two pulls are in
// flight (or ctx ends), forcing them to overlap.
func overlapHook(s **Server) func(context.Context, int64) {
	return func(ctx context.Context, _ int64) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, _ = (*s).WaitStats(ctx, func(st Stats) bool { return st.MaxPullsInFlight >= 2 })
	}
}

// TestConcurrentPullsShareOneRow: two get_submission calls at the same
// moment hand out the same submission under two keys; only the key saved
// last is accepted by put_result.
func TestConcurrentPullsShareOneRow(t *testing.T) {
	var s *Server
	s = NewServer(WithPullHook(overlapHook(&s)))
	defer s.Close()
	id := s.Submit("{}")
	s.Submit("{}") // a second job the racing pull should have had
	var wg sync.WaitGroup
	got := make([]pulled, 2)
	for i := range got {
		r := newRaw(t, s)
		r.login()
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = r.pull() }()
	}
	wg.Wait()
	if got[0].id != id || got[1].id != id || got[0].key == got[1].key {
		t.Fatalf("pulls got %d/%s and %d/%s, want submission %d under two keys", got[0].id, got[0].key, got[1].id, got[1].key, id)
	}
	if st := s.Stats(); st.LostLeases != 1 || st.MaxPullsInFlight != 2 {
		t.Errorf("stats %+v, want one lost lease and two pulls in flight", st)
	}
	r := newRaw(t, s)
	r.login()
	accepted := 0
	for _, p := range got {
		if code, _ := r.put(p.id, p.key, "{}"); code == 0 {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("%d put_results accepted, want 1 (the key saved last)", accepted)
	}
}

// TestLateSaveUnretires: a pull that read a submission before an accepted
// put_result and saves after it brings the submission back, unretired,
// with a new key; answering that offer is a second LMS callback.
func TestLateSaveUnretires(t *testing.T) {
	gate, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var s *Server
	hold := false
	var mu sync.Mutex
	s = NewServer(WithLease(time.Hour), WithPullHook(func(ctx context.Context, _ int64) {
		mu.Lock()
		h := hold
		mu.Unlock()
		if !h {
			return
		}
		close(entered)
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}))
	defer s.Close()
	id := s.Submit("{}")
	a, b := newRaw(t, s), newRaw(t, s)
	a.login()
	b.login()
	first := a.pull()
	s.ExpireLeases() // the lease lapses: the row is offered again
	mu.Lock()
	hold = true
	mu.Unlock()
	late := make(chan pulled, 1)
	go func() { late <- b.pull() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	// b's pull has read the row; a answers with its key meanwhile.
	if code, content := a.put(first.id, first.key, "{}"); code != 0 {
		t.Fatalf("put_result: %d %v", code, content)
	}
	if sub, _ := s.Submission(id); !sub.Retired {
		t.Fatal("accepted put_result did not retire the submission")
	}
	once.Do(func() { close(gate) })
	second := <-late
	sub, _ := s.Submission(id)
	if sub.Retired || sub.Key != second.key || second.id != id {
		t.Fatalf("after the late save: %+v (late pull %+v), want unretired with the late key", sub, second)
	}
	if st := s.Stats(); st.Unretired != 1 {
		t.Errorf("Unretired = %d, want 1", st.Unretired)
	}
	if code, _ := b.put(second.id, second.key, "{}"); code != 0 {
		t.Fatal("answer with the late key refused")
	}
	if n := s.CallbackCount(id); n != 2 {
		t.Errorf("%d LMS callbacks, want 2 (the duplicate the race causes)", n)
	}
}

// TestAtomicPullsOption: with WithAtomicPulls overlapping pulls get
// different submissions.
func TestAtomicPullsOption(t *testing.T) {
	s := NewServer(WithAtomicPulls(), WithPullDelay(50*time.Millisecond))
	defer s.Close()
	s.Submit("{}")
	s.Submit("{}")
	var wg sync.WaitGroup
	got := make([]pulled, 2)
	for i := range got {
		r := newRaw(t, s)
		r.login()
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = r.pull() }()
	}
	wg.Wait()
	if got[0].id == got[1].id {
		t.Fatalf("atomic pulls both got submission %d", got[0].id)
	}
}

// TestDownAndUp: xqueue can go away and come back on the same address with
// its state.
func TestDownAndUp(t *testing.T) {
	s := NewServer()
	defer s.Close()
	id := s.Submit("{}")
	r := newRaw(t, s)
	r.login()
	s.Down()
	if _, err := r.hc.PostForm(s.URL()+"/xqueue/login/", url.Values{}); err == nil {
		t.Fatal("request to a down xqueue succeeded")
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if p := r.pull(); p.id != id {
		t.Fatalf("pulled %d after Up, want %d", p.id, id)
	}
}
