package worker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/worker"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// setup starts NATS with one work-queue stream and durable consumer.
func setup(t *testing.T) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
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
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}

// TestPanicIsRetriedAndTheProcessKeepsServing: a handler that panics on a
// message does not stop the pool; the message is redelivered (the panic is
// a transient failure), the other messages are served, the stack and the
// message's annotations are logged.
func TestPanicIsRetriedAndTheProcessKeepsServing(t *testing.T) {
	js, cons := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range []string{"boom", "fine-1", "fine-2"} {
		if _, err := js.Publish(ctx, "t."+m, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	var logs lockedBuffer
	pool := worker.New(worker.Config{Workers: 2, RetryBase: time.Millisecond, RetryLimit: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	var mu sync.Mutex
	done := map[string]int{}
	panics := 0
	allDone := make(chan struct{})
	h := func(ctx context.Context, d *worker.Delivery) error {
		body := string(d.Msg.Data())
		d.Annotate("job", body, "attempt", d.Delivered)
		worker.Log(ctx).Info("deep inside", "step", "draw")
		mu.Lock()
		defer mu.Unlock()
		if body == "boom" && panics == 0 {
			panics++
			var m map[string]int
			m["hostile name"]++ // a real nil-map panic
		}
		done[body]++
		if len(done) == 3 {
			close(allDone)
		}
		return nil
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- pool.Run(runCtx, worker.Source{Name: "d", Consumer: cons, Handle: h}) }()
	select {
	case <-allDone:
	case err := <-errc:
		t.Fatalf("pool stopped: %v", err)
	case <-ctx.Done():
		t.Fatalf("not every message was served; log:\n%s", logs.String())
	}
	stop()
	if err := <-errc; err != nil {
		t.Errorf("Run after stop: %v", err)
	}
	if done["boom"] != 1 || done["fine-1"] != 1 || done["fine-2"] != 1 {
		t.Errorf("served %v, want each once after the panic", done)
	}
	out := logs.String()
	for _, want := range []string{"panic", "assignment to entry in nil map", "worker_test.go", "job=boom", "attempt=1",
		"msg=\"deep inside\" source=d job=fine-1 attempt=1 step=draw"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestDeletedConsumerStopsRun: when a source's consumer is deleted while
// the pool serves it, Run returns an error naming the source.
func TestDeletedConsumerStopsRun(t *testing.T) {
	js, cons := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool := worker.New(worker.Config{Log: slog.New(slog.DiscardHandler), CheckEvery: 20 * time.Millisecond})
	served := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- pool.Run(ctx, worker.Source{Name: "relay-x", Consumer: cons, Handle: func(context.Context, *worker.Delivery) error {
			served <- struct{}{}
			return nil
		}})
	}()
	// Wait until the pool is pulling: one message goes through.
	if _, err := js.Publish(ctx, "t.a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("nothing served")
	}
	if err := js.DeleteConsumer(ctx, "T", "d"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, worker.ErrSourceStopped) || !strings.Contains(err.Error(), "relay-x") {
			t.Errorf("Run returned %v, want ErrSourceStopped naming relay-x", err)
		}
	case <-ctx.Done():
		t.Fatal("Run kept going after its consumer was deleted")
	}
}

// countingMetrics is a Metrics that counts.
type countingMetrics struct {
	mu       sync.Mutex
	started  int
	outcomes map[worker.Outcome]int
}

func (m *countingMetrics) Started(string) { m.mu.Lock(); m.started++; m.mu.Unlock() }
func (m *countingMetrics) Settled(_ string, o worker.Outcome, _ time.Duration) {
	m.mu.Lock()
	m.outcomes[o]++
	m.mu.Unlock()
}

// TestOutcomesReachTheMetricsSeam: every delivery is reported once with
// how it was settled: acked, retried, dropped.
func TestOutcomesReachTheMetricsSeam(t *testing.T) {
	js, cons := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := &countingMetrics{outcomes: map[worker.Outcome]int{}}
	pool := worker.New(worker.Config{Log: slog.New(slog.DiscardHandler), Metrics: m})
	for _, s := range []string{"ok", "retry", "drop"} {
		if _, err := js.Publish(ctx, "t."+s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	finished := make(chan struct{})
	h := func(_ context.Context, d *worker.Delivery) error {
		body := string(d.Msg.Data())
		mu.Lock()
		seen[body]++
		n := seen["ok"] + seen["retry"] + seen["drop"]
		mu.Unlock()
		if n == 4 {
			defer close(finished)
		}
		switch {
		case body == "retry" && d.Delivered == 1:
			return worker.RetryAfter(time.Millisecond, errors.New("later"))
		case body == "drop":
			return worker.Drop("bad")
		}
		return nil
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- pool.Run(runCtx, worker.Source{Name: "d", Consumer: cons, Handle: h}) }()
	select {
	case <-finished:
	case <-ctx.Done():
		t.Fatal("not all deliveries served")
	}
	stop()
	<-errc
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started != 4 || m.outcomes[worker.Acked] != 2 || m.outcomes[worker.Retried] != 1 || m.outcomes[worker.Dropped] != 1 {
		t.Errorf("started %d, outcomes %v; want 4 started, 2 acked, 1 retried, 1 dropped", m.started, m.outcomes)
	}
}
