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
			e, err := s.Reserve(ctx, "1", owner, []byte(`{"Name":"Ada"}`))
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
	e, err := s.Reserve(ctx, "1", owner, []byte(`{"Name":"Ada"}`))
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
