package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func nowpb() *timestamppb.Timestamp { return timestamppb.Now() }

// reap answers, with an error, dead jobs held longer than the grace period:
// the operator had their chance to Requeue or Fail them.
func (b *Bridge) reap(ctx context.Context) error {
	for sleep(ctx, b.reapInterval) {
		if err := b.reapOnce(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("reaping held jobs failed", "err", err)
		}
	}
	return nil
}

func (b *Bridge) reapOnce(ctx context.Context) error {
	cutoff := time.Now().Add(-b.holdGrace)
	var due []*certdv1.JobRecord
	err := b.p.Records.Scan(ctx, func(r *certdv1.JobRecord) bool {
		if r.State == certdv1.JobState_JOB_STATE_DEAD && r.DeadAt != nil && r.DeadAt.AsTime().Before(cutoff) {
			due = append(due, r)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, r := range due {
		if r.Source == certdv1.Source_SOURCE_XQUEUE && b.xq == nil {
			continue // another bridge with xqueue answers these
		}
		reason := fmt.Sprintf("gave up after holding the job for %s: %s", b.holdGrace, r.LastError)
		b.log.Warn("answering held job with an error", "job", r.Id, "held_since", r.DeadAt.AsTime())
		if _, err := b.p.GiveUp(ctx, r, reason, b.worker.Id, b.worker.Region); err != nil && !errors.Is(err, pipeline.ErrNotHeld) {
			return err
		}
	}
	return nil
}
