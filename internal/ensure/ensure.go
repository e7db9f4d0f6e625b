// Package ensure creates JetStream streams and key-value buckets, or
// updates them only when their configuration differs from what is asked.
//
// Every certd process declares the topology when it starts. Updating a
// stream that has not changed is not free: the server rewrites the stream's
// store configuration while other processes may be creating consumers on
// it (record watches, job consumers), and nats-server reads that
// configuration there without a lock. Updating only on a real change keeps
// the start of many processes at once quiet, and an operator's change of a
// setting (replicas, retention, placement) still takes effect.
package ensure

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream creates the stream, or updates it when the fields certd sets
// differ from the stream's.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return Stream(ctx, js, cfg) // another process created it first
		}
		return err
	case err != nil:
		return err
	}
	if sameStream(s.CachedInfo().Config, cfg) {
		return nil
	}
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// KeyValue opens the bucket, creating it, or updating it when the fields
// certd sets differ from the bucket's.
func KeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return js.CreateOrUpdateKeyValue(ctx, cfg)
	case err != nil:
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s status: %w", cfg.Bucket, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if ok && sameBucket(bs.StreamInfo().Config, cfg) {
		return kv, nil
	}
	return js.CreateOrUpdateKeyValue(ctx, cfg)
}

func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Description == want.Description &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		max(have.Replicas, 1) == max(want.Replicas, 1) &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.MaxAge == want.MaxAge &&
		samePlacement(have.Placement, want.Placement)
}

func sameBucket(have jetstream.StreamConfig, want jetstream.KeyValueConfig) bool {
	history := int64(max(want.History, 1))
	maxValue := int32(want.MaxValueSize)
	if maxValue == 0 {
		maxValue = -1
	}
	return have.Description == want.Description &&
		have.MaxMsgsPerSubject == history &&
		have.MaxAge == want.TTL &&
		have.MaxMsgSize == maxValue &&
		max(have.Replicas, 1) == max(want.Replicas, 1) &&
		(want.Storage != jetstream.FileStorage || have.Storage == jetstream.FileStorage) &&
		samePlacement(have.Placement, want.Placement)
}

func samePlacement(have, want *jetstream.Placement) bool {
	if want == nil || (want.Cluster == "" && len(want.Tags) == 0) {
		return true // certd asks for no placement: keep the server's
	}
	return have != nil && have.Cluster == want.Cluster && slices.Equal(have.Tags, want.Tags)
}
