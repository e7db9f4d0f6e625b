package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
