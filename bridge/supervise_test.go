package bridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
	"github.com/certd-dev/certd/internal/worker"
)

// TestBrokenRelayStopsTheBridge: when a relay's consumer or its stream is
// deleted under a running bridge, the bridge does not carry on pulling
// jobs it can never answer: Run returns an error naming the relay.
func TestBrokenRelayStopsTheBridge(t *testing.T) {
	for _, c := range []struct {
		name, part string
		brk        func(ctx context.Context, js jetstream.JetStream) error
	}{
		{"consumer deleted", pipeline.RelayXqueue, func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteConsumer(ctx, pipeline.ResultsStream, pipeline.RelayXqueue)
		}},
		{"stream deleted", "", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, pipeline.ResultsStream)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, _, xq := setup(t)
			ctx := waitCtx(t)
			b := bridge.New(env.P, bridge.WithLogger(env.Log), bridge.WithXQueue(xq),
				bridge.WithPollInterval(20*time.Millisecond), bridge.WithSourceChecks(50*time.Millisecond))
			// The bridge's first heartbeat says its parts run: every source
			// was bound before.
			beats, err := env.P.Workers.WatchAll(ctx, jetstream.UpdatesOnly())
			if err != nil {
				t.Fatal(err)
			}
			defer beats.Stop()
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- b.Run(runCtx) }()
			for beat := jetstream.KeyValueEntry(nil); beat == nil; {
				select {
				case beat = <-beats.Updates():
				case err := <-done:
					t.Fatalf("bridge stopped at once: %v", err)
				case <-ctx.Done():
					t.Fatal("no heartbeat")
				}
			}

			nc, err := nats.Connect(env.Server.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.brk(ctx, js); err != nil {
				t.Fatal(err)
			}
			var err2 error
			select {
			case err2 = <-done:
			case <-ctx.Done():
				t.Fatal("the bridge kept running without its relay")
			}
			var stopped *supervise.Stopped
			if !errors.As(err2, &stopped) || !errors.Is(err2, worker.ErrSourceStopped) {
				t.Fatalf("Run returned %v, want a stopped relay", err2)
			}
			if !strings.HasPrefix(stopped.Part, "relay-") || (c.part != "" && stopped.Part != c.part) {
				t.Errorf("part %q stopped, want %s", stopped.Part, map[bool]string{true: "a relay", false: c.part}[c.part == ""])
			}
			if !strings.Contains(err2.Error(), stopped.Part) {
				t.Errorf("error %q does not name the part", err2)
			}
		})
	}
}
