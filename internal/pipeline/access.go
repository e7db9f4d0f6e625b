package pipeline

// Accessors: other packages reach the pipeline's JetStream objects only
// through these methods (and Records, Lifecycle, Workers, Control), never
// through its connection.

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/intakelock"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// RelayName is the durable consumer on the results stream that relays the
// results of jobs from source.
func RelayName(s certdv1.Source) string {
	if s == certdv1.Source_SOURCE_SUBMIT {
		return RelaySubmit
	}
	return RelayXqueue
}

// JobMessages binds to the durable consumer of an action's jobs.
func (p *Pipeline) JobMessages(ctx context.Context, a certdv1.Action) (jetstream.Consumer, error) {
	c, err := p.JS.Consumer(ctx, JobsStream, ConsumerName(a))
	if err != nil {
		return nil, fmt.Errorf("bind consumer %s: %w", ConsumerName(a), err)
	}
	return c, nil
}

// ResultMessages binds to the durable consumer that relays the results of
// jobs from source.
func (p *Pipeline) ResultMessages(ctx context.Context, s certdv1.Source) (jetstream.Consumer, error) {
	c, err := p.JS.Consumer(ctx, ResultsStream, RelayName(s))
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", RelayName(s), err)
	}
	return c, nil
}

// AckWait is how long a consumer may hold a message without reporting
// progress before JetStream redelivers it.
func (p *Pipeline) AckWait() time.Duration { return p.Opts.AckWait }

// Conn is the pipeline's NATS connection, for watching its health (and
// for tests that simulate a crash by closing it). Bind streams and
// consumers through the methods here, never through the connection.
func (p *Pipeline) Conn() *nats.Conn { return p.NC }

// IntakeLockBucket opens (creating or updating) the bucket of the xqueue
// intake locks, placed and replicated as the pipeline's own.
func (p *Pipeline) IntakeLockBucket(ctx context.Context) (jetstream.KeyValue, error) {
	var placement *jetstream.Placement
	if p.Opts.Cluster != "" {
		placement = &jetstream.Placement{Cluster: p.Opts.Cluster}
	}
	return intakelock.OpenBucket(ctx, p.JS, p.Opts.Replicas, placement)
}

// IntakeHolders lists the current holders of the intake locks.
func (p *Pipeline) IntakeHolders(ctx context.Context) ([]intakelock.Entry, error) {
	return intakelock.Holders(ctx, p.JS)
}

// JobStats is the state of the durable consumer of an action's jobs.
func (p *Pipeline) JobStats(ctx context.Context, a certdv1.Action) (*jetstream.ConsumerInfo, error) {
	c, err := p.JobMessages(ctx, a)
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s info: %w", ConsumerName(a), err)
	}
	return info, nil
}

// ResultsWaiting is the number of result messages not yet relayed.
func (p *Pipeline) ResultsWaiting(ctx context.Context) (uint64, error) {
	s, err := p.JS.Stream(ctx, ResultsStream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", ResultsStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", ResultsStream, err)
	}
	return info.State.Msgs, nil
}
