package supervise_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/supervise"
)

func waitCtx(ctx context.Context) error { <-ctx.Done(); return nil }

func TestAPartThatReturnsNilStopsTheGroup(t *testing.T) {
	g := supervise.New(context.Background())
	stopped := make(chan struct{})
	g.Add("relay", func(context.Context) error { return nil })
	g.Add("intake", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
	err := g.Run()
	var s *supervise.Stopped
	if !errors.As(err, &s) || s.Part != "relay" {
		t.Fatalf("Run = %v, want the relay named", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("Run returned before the other part stopped")
	}
}

func TestAFailingPartIsNamedWithItsError(t *testing.T) {
	g := supervise.New(context.Background())
	boom := errors.New("stream gone")
	g.Add("consumer", func(context.Context) error { return boom })
	g.Add("http", waitCtx)
	err := g.Run()
	if !errors.Is(err, boom) || err.Error() != `part "consumer" stopped: stream gone` {
		t.Fatalf("Run = %v", err)
	}
}

func TestCancelIsACleanStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parent, stop := context.WithCancel(ctx)
	g := supervise.New(parent)
	started := make(chan struct{})
	g.Add("bridge", func(ctx context.Context) error { close(started); <-ctx.Done(); return ctx.Err() })
	g.Add("control", waitCtx)
	go func() { <-started; stop() }()
	if err := g.Run(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestDoneEndsTheGroupCleanly(t *testing.T) {
	g := supervise.New(context.Background())
	g.Add("demo", func(context.Context) error { return supervise.Done })
	g.Add("bridge", waitCtx)
	if err := g.Run(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}
