package bridge

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/metrics"
	"github.com/certd-dev/certd/internal/pipeline"
)

// WithMetrics sets where the bridge reports pull, publish and answer
// durations, the xqueue queue length, the answers waiting and whether it
// holds the intake (nil: nowhere).
func WithMetrics(m *metrics.Metrics) Option { return func(b *Bridge) { b.metrics = m } }

// waitingEvery is how often the answers waiting are counted.
const waitingEvery = 5 * time.Second

// reportWaiting counts the answers waiting (results not yet delivered,
// pending or under way on the relay consumers) every waitingEvery until
// ctx ends.
func (b *Bridge) reportWaiting(ctx context.Context) error {
	if b.metrics == nil {
		return nil
	}
	t := time.NewTicker(waitingEvery)
	defer t.Stop()
	for {
		n, ok := 0, false
		for _, durable := range []string{pipeline.RelaySubmit, pipeline.RelayXqueue} {
			if durable == pipeline.RelayXqueue && b.xq == nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, waitingEvery)
			info, err := b.consumerInfo(cctx, durable)
			cancel()
			if err != nil {
				continue
			}
			ok = true
			n += int(info.NumPending) + info.NumAckPending
		}
		if ok {
			b.metrics.SetAnswersWaiting(n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Bridge) consumerInfo(ctx context.Context, durable string) (*jetstream.ConsumerInfo, error) {
	c, err := b.p.JS.Consumer(ctx, pipeline.ResultsStream, durable)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// since records the duration of a stage begun at t0.
func (b *Bridge) since(stage string, t0 time.Time) { b.metrics.ObserveStage(stage, time.Since(t0)) }
