package bridge

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Metrics is what the bridge reports beyond the worker pool's seam: pull,
// publish and answer durations (stages "pull", "publish", "answer"), the
// xqueue queue length, the answers waiting and whether this bridge holds
// the intake. A value given to WithMetrics that implements it gets them.
type Metrics interface {
	ObserveStage(stage string, d time.Duration)
	SetXQueueLength(n int)
	SetAnswersWaiting(n int)
	SetIntakeHolder(holding bool)
}

// noMetrics records nothing.
type noMetrics struct{}

func (noMetrics) ObserveStage(string, time.Duration) {}
func (noMetrics) SetXQueueLength(int)                {}
func (noMetrics) SetAnswersWaiting(int)              {}
func (noMetrics) SetIntakeHolder(bool)               {}

// waitingEvery is how often the answers waiting are counted.
const waitingEvery = 5 * time.Second

// reportWaiting counts the answers waiting (results not yet delivered,
// pending or under way on the relay consumers) every waitingEvery until
// ctx ends. Run starts it only when the bridge has gauges.
func (b *Bridge) reportWaiting(ctx context.Context) error {
	t := time.NewTicker(waitingEvery)
	defer t.Stop()
	for {
		n, ok := 0, false
		for _, src := range []certdv1.Source{certdv1.Source_SOURCE_SUBMIT, certdv1.Source_SOURCE_XQUEUE} {
			if src == certdv1.Source_SOURCE_XQUEUE && b.xq == nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, waitingEvery)
			info, err := b.relayInfo(cctx, src)
			cancel()
			if err != nil {
				continue
			}
			ok = true
			n += int(info.NumPending) + info.NumAckPending
		}
		if ok {
			b.gauges.SetAnswersWaiting(n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// relayInfo is the state of the relay consumer of source.
func (b *Bridge) relayInfo(ctx context.Context, src certdv1.Source) (*jetstream.ConsumerInfo, error) {
	c, err := b.p.ResultMessages(ctx, src)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// since records the duration of a stage begun at t0.
func (b *Bridge) since(stage string, t0 time.Time) { b.gauges.ObserveStage(stage, time.Since(t0)) }
