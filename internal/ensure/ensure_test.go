package ensure_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/ensure"
	"github.com/certd-dev/certd/internal/natsserver"
)

func setup(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, js
}

// apiCalls is how many JetStream API requests the account has made.
func apiCalls(t *testing.T, ctx context.Context, js jetstream.JetStream) uint64 {
	t.Helper()
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ai.API.Total
}

// TestUnchangedIsNotUpdated: declaring the same stream and bucket again
// only reads them (no update); a changed setting is applied.
func TestUnchangedIsNotUpdated(t *testing.T) {
	ctx, js := setup(t)
	sc := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute, Description: "one"}
	kc := jetstream.KeyValueConfig{Bucket: "B", Description: "bucket", History: 1, TTL: time.Hour, Storage: jetstream.FileStorage}
	if err := ensure.Stream(ctx, js, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure.KeyValue(ctx, js, kc); err != nil {
		t.Fatal(err)
	}
	// Again, unchanged: one info request each (and the status read of the
	// bucket), no update.
	before := apiCalls(t, ctx, js)
	if err := ensure.Stream(ctx, js, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure.KeyValue(ctx, js, kc); err != nil {
		t.Fatal(err)
	}
	// AccountInfo itself is one more call.
	if got := apiCalls(t, ctx, js) - before; got != 4 {
		t.Errorf("%d API calls to declare an unchanged stream and bucket, want 4 (info, info, status info, account info)", got)
	}
	// Changed: applied.
	sc.Description, kc.TTL = "two", 2*time.Hour
	if err := ensure.Stream(ctx, js, sc); err != nil {
		t.Fatal(err)
	}
	kv, err := ensure.KeyValue(ctx, js, kc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if d := s.CachedInfo().Config.Description; d != "two" {
		t.Errorf("stream description %q after a change, want two", d)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 2*time.Hour {
		t.Errorf("bucket TTL %v after a change, want 2h", st.TTL())
	}
}
