package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// TestBrokenPartStopsTheProcess: a consumer process whose job consumer is
// deleted under it (an operator's mistake, a lost stream) does not carry on
// serving nothing: it exits with status 1 and a line naming the part.
func TestBrokenPartStopsTheProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := newSplitEnv(t, ctx)
	p := e.startConsumer(t, "eu-west")
	if err := p.out.waitFor(ctx, "consumer started", 1); err != nil {
		t.Fatal(err)
	}
	js := jetStreamAt(t, e.natsURL)
	name := pipeline.ConsumerName(certdv1.Action_ACTION_REGEN)
	if err := js.DeleteConsumer(ctx, pipeline.JobsStream, name); err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	p.out.waitClosed()
	out := p.out.text()
	if !strings.Contains(out, `part "consumer" stopped`) || !strings.Contains(out, name) {
		t.Errorf("no line names the stopped part and its consumer:\n%s", out)
	}
}

// TestBrokenRelayStopsTheBridgeProcess: a bridge process whose xqueue
// relay loses its consumer does not carry on pulling jobs it can never
// answer: it exits with status 1 and a line naming the relay.
func TestBrokenRelayStopsTheBridgeProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := newSplitEnv(t, ctx)
	p := e.startBridge(t)
	if err := p.out.waitFor(ctx, "intake started", 1); err != nil {
		t.Fatal(err)
	}
	js := jetStreamAt(t, e.natsURL)
	if err := js.DeleteConsumer(ctx, pipeline.ResultsStream, pipeline.RelayXqueue); err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	p.out.waitClosed()
	out := p.out.text()
	if !strings.Contains(out, `part "bridge" stopped`) || !strings.Contains(out, `part "relay-xqueue" stopped`) {
		t.Errorf("no line names the stopped bridge and its relay:\n%s", out)
	}
}
