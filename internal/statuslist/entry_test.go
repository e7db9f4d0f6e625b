package statuslist

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Redeliveries of one job, even racing, get one index; revoking records the
// first date and reason and sets the bit.
func TestReserveIsIdempotentAndRevokeRecords(t *testing.T) {
	_, open := startKV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const owner = "0b9f6c1e-4d2a-4b8e-9f3a-1c2d3e4f5a6b"
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int]bool{}
	)
	for range 4 {
		s := NewStore(open())
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := s.Reserve(ctx, owner, []byte(`{"Name":"Ada"}`))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[e.Index] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 1 {
		t.Fatalf("racing deliveries of one certificate got indexes %v, want one", seen)
	}
	s := NewStore(open())
	e, err := s.Reserve(ctx, owner, []byte(`{"Name":"Ada"}`))
	if err != nil || !seen[e.Index] {
		t.Fatalf("redelivery: index %d (%v), want %v", e.Index, err, seen)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	r, changed, err := s.RevokeCertificate(ctx, owner, at, "issued in error")
	if err != nil || !changed || r.Reason != "issued in error" || !r.RevokedAt.Equal(at) {
		t.Fatalf("revoke: %+v changed=%v err=%v", r, changed, err)
	}
	r, changed, err = s.RevokeCertificate(ctx, owner, at.Add(time.Hour), "again")
	if err != nil || changed || r.Reason != "issued in error" {
		t.Fatalf("second revoke: %+v changed=%v err=%v, want the first reason kept", r, changed, err)
	}
	bits, _, err := s.Bits(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if set, _ := bits.Get(e.Index); !set {
		t.Fatalf("bit %d not set after revocation", e.Index)
	}
	if _, _, err := s.RevokeCertificate(ctx, "11111111-2222-3333-4444-555555555555", at, "x"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("revoking an unknown certificate: %v, want ErrNoEntry", err)
	}
}

// When the current list moves on, new credentials go to the new list and
// the publishers start publishing it (the earlier lists stay published).
func TestCurrentListMovesOn(t *testing.T) {
	_, open := startKV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv := open()
	s := NewStore(kv)
	published := make(chan string, 16)
	ps := &Publishers{
		Store: s, IssuerDID: "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", TTL: time.Minute,
		URL:  func(list string) string { return "https://certs.example.org/cert/status/" + list + ".json" },
		Sign: func(ctx context.Context, unsigned []byte) ([]byte, error) { return unsigned, nil },
		Put: func(ctx context.Context, list string, signed []byte) error {
			published <- list
			return nil
		},
	}
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ps.Run(pctx) }()
	if l := <-published; l != "1" {
		t.Fatalf("first list published: %s, want 1", l)
	}
	e, err := s.Reserve(ctx, "a0000000-0000-4000-8000-000000000001", nil)
	if err != nil || e.List != "1" {
		t.Fatalf("reserve: %+v %v, want list 1", e, err)
	}
	if _, err := kv.Put(ctx, currentKey, []byte("2")); err != nil { // as allocateCurrent does when list 1 is full
		t.Fatal(err)
	}
	if l := <-published; l != "2" {
		t.Fatalf("after the move: published %s, want 2", l)
	}
	e, err = s.Reserve(ctx, "a0000000-0000-4000-8000-000000000002", nil)
	if err != nil || e.List != "2" {
		t.Fatalf("reserve after the move: %+v %v, want list 2", e, err)
	}
	pcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("publishers stopped with %v", err)
	}
}
