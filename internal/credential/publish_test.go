package credential

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/statuslist"
)

// Revocations reach the published, signed list: the publisher republishes
// after each change, concurrent revocations included, and the file it
// writes verifies with the issuer's key.
func TestPublishedListCatchesUp(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, statuslist.BucketConfig())
	if err != nil {
		t.Fatal(err)
	}
	store := statuslist.NewStore(kv)

	s, _ := NewSuite()
	iss := newTestIssuer(t)
	path := filepath.Join(t.TempDir(), "1.json")
	published := make(chan []byte, 64)
	pub := &statuslist.Publisher{
		Store: store, List: "1", URL: "https://certs.example.org/cert/status/1.json",
		IssuerDID: iss.did, TTL: 5 * time.Minute,
		Sign: func(_ context.Context, b []byte) ([]byte, error) { return s.Sign(b, iss.signer, time.Now()) },
		Put: func(pctx context.Context, b []byte) error {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return err
			}
			select {
			case published <- b:
			case <-pctx.Done():
			}
			return nil
		},
		Log: slog.New(slog.DiscardHandler),
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pub.Run(pctx) }()
	defer func() {
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("publisher ended with %v", err)
		}
	}()

	waitFor := func(indexes ...int) {
		t.Helper()
		for {
			select {
			case b := <-published:
				if _, err := s.Verify(b, iss.doc.Resolver()); err != nil {
					t.Fatalf("published list does not verify: %v", err)
				}
				bits, err := statuslist.ParseCredential(b)
				if err != nil {
					t.Fatal(err)
				}
				all := true
				for _, i := range indexes {
					if set, _ := bits.Get(i); !set {
						all = false
					}
				}
				if all {
					return
				}
			case <-ctx.Done():
				t.Fatalf("the published list never showed bits %v", indexes)
			}
		}
	}
	waitFor() // the initial publication
	if _, err := store.Revoke(ctx, "1", 300); err != nil {
		t.Fatal(err)
	}
	waitFor(300)

	var wg sync.WaitGroup
	want := []int{300}
	for i := range 20 {
		idx := 1000 + i*37
		want = append(want, idx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := statuslist.NewStore(kv).Revoke(ctx, "1", idx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitFor(want...)
	onDisk, _ := os.ReadFile(path)
	bits, err := statuslist.ParseCredential(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range want {
		if set, _ := bits.Get(i); !set {
			t.Fatalf("bit %d missing from the file", i)
		}
	}
}
