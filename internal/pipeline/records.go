package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// ErrNotFound is returned for a job id that has no record.
var ErrNotFound = errors.New("job not found")

// errNoChange may be returned by a modify function to leave the record as
// it is; modify then returns the current record and no error.
var errNoChange = errors.New("no change")

// maxHistory bounds the state history kept in a record so that a job that
// bounces for days does not grow its record without limit.
const maxHistory = 64

// Records is the store of job records: one KV entry per job, updated with
// compare-and-set so that the bridge, consumers and relay never overwrite
// each other's changes. Outside this package it only reads (Get, Scan,
// Watch): every write is a Lifecycle event.
type Records struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// NewRecords wraps a KV bucket.
func NewRecords(kv jetstream.KeyValue) *Records {
	return &Records{kv: kv, now: time.Now}
}

// Get returns the record of a job, or ErrNotFound.
func (r *Records) Get(ctx context.Context, id string) (*certdv1.JobRecord, error) {
	rec, _, err := r.get(ctx, id)
	return rec, err
}

func (r *Records) get(ctx context.Context, id string) (*certdv1.JobRecord, uint64, error) {
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("record %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read record %s: %w", id, err)
	}
	rec := &certdv1.JobRecord{}
	if err := unmarshal(e.Value(), rec); err != nil {
		return nil, 0, fmt.Errorf("record %s: %w", id, err)
	}
	return rec, e.Revision(), nil
}

// create stores a new record. If a record with that id exists already it
// returns false and the existing record, untouched: this is the lasting
// dedupe of xqueue submissions. Only Lifecycle.Submit and Reject call it.
func (r *Records) create(ctx context.Context, rec *certdv1.JobRecord) (bool, *certdv1.JobRecord, error) {
	now := timestamppb.New(r.now())
	rec.CreatedAt, rec.UpdatedAt = now, now
	if len(rec.History) == 0 {
		rec.History = []*certdv1.StateChange{{State: rec.State, At: now}}
	}
	b, err := marshal(rec)
	if err != nil {
		return false, nil, err
	}
	for {
		_, err = r.kv.Create(ctx, rec.Id, b)
		if err == nil {
			return true, rec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil, fmt.Errorf("create record %s: %w", rec.Id, err)
		}
		existing, err := r.Get(ctx, rec.Id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted in between; try again
		}
		return false, existing, err
	}
}

// modify applies fn to the current record and stores it if nothing else
// changed it in between, retrying on conflict. fn may be called several
// times and must only change the record it is given. A record fn leaves
// as it was is not written. Only Lifecycle's methods call it.
func (r *Records) modify(ctx context.Context, id string, fn func(*certdv1.JobRecord) error) (*certdv1.JobRecord, error) {
	rec, _, err := r.update(ctx, id, nil, 0, fn)
	return rec, err
}

// update is modify that also returns the revision written (or read, when
// nothing changed). With known, a copy of the record as read at revision
// rev, its first try writes without reading: a record nobody changed since
// costs one round trip instead of two. Only a write is decided on that
// copy; a refusal or no change is decided again on a fresh read.
func (r *Records) update(ctx context.Context, id string, known *certdv1.JobRecord, knownRev uint64, fn func(*certdv1.JobRecord) error) (*certdv1.JobRecord, uint64, error) {
	for attempt := 0; ; attempt++ {
		var rec *certdv1.JobRecord
		var rev uint64
		guess := attempt == 0 && known != nil
		if guess {
			rec, rev = proto.Clone(known).(*certdv1.JobRecord), knownRev
		} else {
			var err error
			if rec, rev, err = r.get(ctx, id); err != nil {
				return nil, 0, err
			}
		}
		before := proto.Clone(rec)
		err := fn(rec)
		if guess && (err != nil || proto.Equal(before, rec)) {
			continue // decided on a copy that may be old: decide again on a fresh read
		}
		if errors.Is(err, errNoChange) {
			return rec, rev, nil
		} else if err != nil {
			return nil, 0, err
		}
		if proto.Equal(before, rec) {
			return rec, rev, nil // nothing to write: saves a round trip
		}
		rec.UpdatedAt = timestamppb.New(r.now())
		b, err := marshal(rec)
		if err != nil {
			return nil, 0, err
		}
		nrev, err := r.kv.Update(ctx, id, b, rev)
		if err == nil {
			return rec, nrev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || attempt > 100 {
			return nil, 0, fmt.Errorf("update record %s: %w", id, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
}

// transition sets a record's state and appends it to the history. It
// checks nothing: Lifecycle checks every change against the transitions
// table before calling it.
func (r *Records) transition(rec *certdv1.JobRecord, state certdv1.JobState, note, worker, region string) {
	rec.State = state
	rec.History = append(rec.History, &certdv1.StateChange{
		State: state, At: timestamppb.New(r.now()), Note: note, Worker: worker, Region: region,
	})
	if n := len(rec.History); n > maxHistory {
		// Keep the first entry (acceptance) and the most recent ones.
		rec.History = append(rec.History[:1], rec.History[n-maxHistory+1:]...)
	}
}

// Scan calls fn for every record until fn returns false. Records are read
// from one KV watch, not one request each.
func (r *Records) Scan(ctx context.Context, fn func(*certdv1.JobRecord) bool) error {
	w, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("scan records: watcher closed")
			}
			if e == nil {
				return nil // initial values done
			}
			rec := &certdv1.JobRecord{}
			if err := unmarshal(e.Value(), rec); err != nil {
				continue // not ours; never stop a scan on one bad entry
			}
			if !fn(rec) {
				return nil
			}
		}
	}
}

// Watch streams every record change from now on (and, with replay, the
// current records first) until ctx ends.
func (r *Records) Watch(ctx context.Context, replay bool) (<-chan *certdv1.JobRecord, error) {
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if !replay {
		opts = append(opts, jetstream.UpdatesOnly())
	}
	w, err := r.kv.WatchAll(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("watch records: %w", err)
	}
	out := make(chan *certdv1.JobRecord, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				rec := &certdv1.JobRecord{}
				if err := unmarshal(e.Value(), rec); err != nil {
					continue
				}
				select {
				case out <- rec:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
