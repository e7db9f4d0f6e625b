package pipeline

import (
	"context"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// The record writers, for this package's tests only (they seed records in
// chosen states); elsewhere only Lifecycle writes.

func (r *Records) Create(ctx context.Context, rec *certdv1.JobRecord) (bool, *certdv1.JobRecord, error) {
	return r.create(ctx, rec)
}

func (r *Records) Update(ctx context.Context, id string, fn func(*certdv1.JobRecord) error) (*certdv1.JobRecord, error) {
	return r.modify(ctx, id, fn)
}

func (r *Records) Transition(rec *certdv1.JobRecord, state certdv1.JobState, note, worker, region string) {
	r.transition(rec, state, note, worker, region)
}
