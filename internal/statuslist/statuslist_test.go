package statuslist

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/natsserver"
)

func TestBitOrderAndEncoding(t *testing.T) {
	b := NewBits()
	for _, i := range []int{0, 7, 8, 94567, MinBits - 1} {
		if changed, err := b.Set(i); err != nil || !changed {
			t.Fatalf("Set(%d) = %v, %v", i, changed, err)
		}
	}
	// bit i is byte i>>3, mask 0x80>>(i&7): index 0 is the left-most bit.
	if b[0] != 0x81 || b[1] != 0x80 || b[94567>>3] != 0x80>>(94567&7) || b[ListBytes-1] != 0x01 {
		t.Fatalf("bytes %x %x %x %x", b[0], b[1], b[94567>>3], b[ListBytes-1])
	}
	if changed, _ := b.Set(7); changed {
		t.Fatal("setting a set bit reported a change")
	}
	enc, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if enc[0] != 'u' || strings.ContainsAny(enc, "=+/") {
		t.Fatalf("encodedList %q is not u + unpadded base64url", enc[:20])
	}
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 6, 7, 8, 9, 94566, 94567, 94568, MinBits - 1} {
		want, _ := b.Get(i)
		if g, _ := got.Get(i); g != want {
			t.Errorf("bit %d after round trip = %v, want %v", i, g, want)
		}
	}
	if _, err := b.Set(MinBits); err == nil {
		t.Fatal("index past the end accepted")
	}
	short, _ := Encode(make(Bits, 100))
	if _, err := Decode(short); err == nil {
		t.Fatal("a list under 131072 bits accepted")
	}
}

func TestListCredentialShape(t *testing.T) {
	b := NewBits()
	b.Set(3)
	raw, err := BuildCredential(List{
		URL: "https://certs.example.org/cert/status/1.json", IssuerDID: "did:web:certs.example.org",
		ValidFrom: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), TTL: 5 * time.Minute, Bits: b,
	})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	ctx, _ := json.Marshal(c["@context"])
	if string(ctx) != `["https://www.w3.org/ns/credentials/v2"]` {
		t.Errorf("contexts %s", ctx)
	}
	if c["issuer"] != "did:web:certs.example.org" {
		t.Errorf("issuer %v, want the plain DID string", c["issuer"])
	}
	sub := c["credentialSubject"].(map[string]any)
	if sub["ttl"] != float64(300000) || sub["statusPurpose"] != "revocation" || sub["type"] != "BitstringStatusList" {
		t.Errorf("subject %v", sub)
	}
	bits, err := ParseCredential(raw)
	if err != nil {
		t.Fatal(err)
	}
	if set, _ := bits.Get(3); !set {
		t.Error("bit 3 lost")
	}
}

func startKV(t *testing.T) (jetstream.JetStream, func() jetstream.KeyValue) {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateKeyValue(ctx, BucketConfig()); err != nil {
		t.Fatal(err)
	}
	// Each caller gets its own connection: like separate consumer processes.
	open := func() jetstream.KeyValue {
		c, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		j, _ := jetstream.New(c)
		octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ocancel()
		kv, err := j.KeyValue(octx, Bucket)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	return js, open
}

// Concurrent revocations from several stores (own connections) never lose
// each other: every bit any of them set is set at the end.
func TestConcurrentRevocationsAllLand(t *testing.T) {
	_, open := startKV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const setters, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, setters*each)
	for s := range setters {
		st := NewStore(open())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				idx := (s*each+k)*397 + 11 // distinct, spread over many bytes
				changed, err := st.Revoke(ctx, "1", idx)
				if err != nil {
					errs <- err
					return
				}
				if !changed {
					errs <- errors.New("a fresh bit reported no change")
				}
			}
		}()
	}
	// And all of them also set one shared bit: exactly one sees the change.
	var sharedChanged sync.Map
	for s := range setters {
		st := NewStore(open())
		wg.Add(1)
		go func() {
			defer wg.Done()
			changed, err := st.Revoke(ctx, "1", 5)
			if err != nil {
				errs <- err
			}
			if changed {
				sharedChanged.Store(s, true)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	sharedChanged.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d revocations of the same bit reported a change, want 1", n)
	}
	bits, rev, err := NewStore(open()).Bits(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if rev == 0 {
		t.Fatal("no revision after revocations")
	}
	count := 0
	for i := range MinBits {
		if set, _ := bits.Get(i); set {
			count++
		}
	}
	if count != setters*each+1 {
		t.Fatalf("%d bits set, want %d: revocations were lost", count, setters*each+1)
	}
	for i := range setters * each {
		if set, _ := bits.Get(i*397 + 11); !set {
			t.Fatalf("bit %d lost", i*397+11)
		}
	}
	// Another list is untouched.
	other, rev2, _ := NewStore(open()).Bits(ctx, "2")
	if set, _ := other.Get(11); set || rev2 != 0 {
		t.Fatal("list 2 changed by revocations in list 1")
	}
}

func TestAllocateHandsOutEachIndexOnce(t *testing.T) {
	_, open := startKV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const workers, each = 6, 40
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		st := NewStore(open())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				idx, err := st.Allocate(ctx, "1")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[idx] {
					errs <- errors.New("index handed out twice")
				}
				seen[idx] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct indexes, want %d", len(seen), workers*each)
	}
	// Random, not sequential: the spread covers much of the list.
	lo, hi := MinBits, 0
	for i := range seen {
		lo, hi = min(lo, i), max(hi, i)
	}
	if hi-lo < MinBits/4 {
		t.Errorf("indexes span only %d..%d", lo, hi)
	}
}

// The publisher's Watch sees the empty list first, then each revocation.
func TestWatchSeesRevocations(t *testing.T) {
	_, open := startKV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := NewStore(open())
	seen := make(chan Bits, 8)
	done := make(chan error, 1)
	wctx, stop := context.WithCancel(ctx)
	go func() {
		done <- st.Watch(wctx, "7", func(b Bits, _ uint64) error {
			select {
			case seen <- b:
			case <-wctx.Done():
			}
			return nil
		})
	}()
	first := <-seen
	if set, _ := first.Get(42); set {
		t.Fatal("bit set before any revocation")
	}
	if _, err := NewStore(open()).Revoke(ctx, "7", 42); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-seen:
		if set, _ := b.Get(42); !set {
			t.Fatal("watch delivered a list without the revocation")
		}
	case <-ctx.Done():
		t.Fatal("watch never saw the revocation")
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("watch ended with %v", err)
	}
}
