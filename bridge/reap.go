package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

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
		if r.Source == certdv1.Source_SOURCE_SUBMIT && strings.HasPrefix(r.LastError, callbackFailedPrefix) {
			// The answer exists; only its callback failed. Posting an error
			// answer would just fail the same way: keep the answer.
			b.log.Warn("giving up on a callback; the answer stays in the job record", "job", r.Id)
			note := "callback given up after holding the job for " + b.holdGrace.String() + "; the answer stays in the record"
			if err := b.life.Close(ctx, r, note); err != nil && !errors.Is(err, pipeline.ErrNotHeld) {
				return err
			}
			continue
		}
		reason := fmt.Sprintf("gave up after holding the job for %s: %s", b.holdGrace, r.LastError)
		b.log.Warn("answering held job with an error", "job", r.Id, "held_since", r.DeadAt.AsTime())
		if _, err := b.life.GiveUp(ctx, r, reason); err != nil && !errors.Is(err, pipeline.ErrNotHeld) {
			return err
		}
	}
	return nil
}
