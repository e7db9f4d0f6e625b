// Package pipelinetest writes job records directly, past
// pipeline.Lifecycle and its transitions table, for tests that must start
// from a record in a chosen state: what a crash left behind, or the jobs
// an operator looks at. Production code never imports it; in production
// only Lifecycle changes a record's state.
package pipelinetest

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Bucket opens the job records bucket over nc (the pipeline must be open).
func Bucket(ctx context.Context, nc *nats.Conn) (jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, pipeline.JobsBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", pipeline.JobsBucket, err)
	}
	return kv, nil
}

// Put stores rec as it is, creating or replacing its record. A record
// without history gets one entry for its state; one without a creation
// time gets now.
func Put(ctx context.Context, kv jetstream.KeyValue, rec *certdv1.JobRecord) error {
	now := timestamppb.Now()
	if rec.CreatedAt == nil {
		rec.CreatedAt = now
	}
	if rec.UpdatedAt == nil {
		rec.UpdatedAt = now
	}
	if len(rec.History) == 0 {
		rec.History = []*certdv1.StateChange{{State: rec.State, At: now}}
	}
	b, err := proto.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, rec.Id, b); err != nil {
		return fmt.Errorf("put record %s: %w", rec.Id, err)
	}
	return nil
}

// Change reads a record, applies fn and stores the result as it is.
func Change(ctx context.Context, kv jetstream.KeyValue, id string, fn func(*certdv1.JobRecord)) (*certdv1.JobRecord, error) {
	e, err := kv.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", id, err)
	}
	rec := &certdv1.JobRecord{}
	if err := proto.Unmarshal(e.Value(), rec); err != nil {
		return nil, err
	}
	fn(rec)
	b, err := proto.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if _, err := kv.Update(ctx, id, b, e.Revision()); err != nil {
		return nil, fmt.Errorf("update record %s: %w", id, err)
	}
	return rec, nil
}

// SetState sets rec's state and appends it to its history, as the
// lifecycle would, without checking the change.
func SetState(rec *certdv1.JobRecord, state certdv1.JobState, note, worker string) {
	rec.State = state
	rec.History = append(rec.History, &certdv1.StateChange{State: state, At: timestamppb.Now(), Note: note, Worker: worker})
}

// CountingKV wraps a bucket and counts what goes through it: Reads (Get),
// Tries (Put, Create, Update) and Writes (those that stored something).
// Tests that bound the record round trips of a job use it.
type CountingKV struct {
	jetstream.KeyValue
	Writes, Tries, Reads atomic.Int64
}

// Get counts a read.
func (c *CountingKV) Get(ctx context.Context, k string) (jetstream.KeyValueEntry, error) {
	c.Reads.Add(1)
	return c.KeyValue.Get(ctx, k)
}

func (c *CountingKV) count(rev uint64, err error) (uint64, error) {
	c.Tries.Add(1)
	if err == nil {
		c.Writes.Add(1)
	}
	return rev, err
}

// Put counts a write.
func (c *CountingKV) Put(ctx context.Context, k string, v []byte) (uint64, error) {
	return c.count(c.KeyValue.Put(ctx, k, v))
}

// Create counts a write.
func (c *CountingKV) Create(ctx context.Context, k string, v []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return c.count(c.KeyValue.Create(ctx, k, v, opts...))
}

// Update counts a write.
func (c *CountingKV) Update(ctx context.Context, k string, v []byte, rev uint64) (uint64, error) {
	return c.count(c.KeyValue.Update(ctx, k, v, rev))
}
