package statuslist

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the name of the KV bucket the status lists live in.
const Bucket = "certd_status"

// BucketConfig is the configuration Store expects: no TTL (a revocation
// must never expire), one value per key.
func BucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "revocation bitstrings (bits.<list>) and handed-out indexes (idx.<list>.<n>)",
		History:      1,
		MaxValueSize: ListBytes + 1024,
	}
}

// ErrListFull is returned by Allocate when it keeps hitting taken indexes:
// start a new list.
var ErrListFull = errors.New("status list has no free index left to draw")

// Bounds on retries. A compare-and-set loses only when another revocation
// won, so each retry is progress for someone; the bound turns a broken
// bucket into an error instead of a spin.
const (
	maxCASAttempts   = 1000
	maxAllocAttempts = 64
)

var listIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Store owns the status bits of every list in one bucket. Every change is a
// compare-and-set, so any number of Stores (in any number of processes) may
// revoke concurrently. Safe for concurrent use.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore wraps a bucket created with BucketConfig.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

func checkList(list string) error {
	if !listIDPattern.MatchString(list) {
		return fmt.Errorf("status list id %q: want 1-64 of [A-Za-z0-9_-]", list)
	}
	return nil
}

func bitsKey(list string) string { return "bits." + list }

// Allocate hands out a random, never before handed out index of list, for
// a new credential's BitstringStatusListEntry.
func (s *Store) Allocate(ctx context.Context, list string) (int, error) {
	if err := checkList(list); err != nil {
		return 0, err
	}
	var b [8]byte
	for range maxAllocAttempts {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("allocate status index: %w", err)
		}
		idx := int(binary.BigEndian.Uint64(b[:]) % MinBits)
		_, err := s.kv.Create(ctx, "idx."+list+"."+strconv.Itoa(idx), nil)
		if err == nil {
			return idx, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("allocate status index in list %s: %w", list, err)
		}
	}
	return 0, fmt.Errorf("list %s: %w", list, ErrListFull)
}

// Revoke sets bit index of list. It reports whether the bit changed (false:
// it was set already). It returns only once the bit is stored.
func (s *Store) Revoke(ctx context.Context, list string, index int) (bool, error) {
	if err := checkList(list); err != nil {
		return false, err
	}
	if index < 0 || index >= MinBits {
		return false, fmt.Errorf("revoke: status index %d outside 0..%d", index, MinBits-1)
	}
	key := bitsKey(list)
	for range maxCASAttempts {
		bits, rev, err := s.get(ctx, key)
		if err != nil {
			return false, fmt.Errorf("revoke %s[%d]: %w", list, index, err)
		}
		changed, _ := bits.Set(index)
		if !changed {
			return false, nil
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, bits)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another revocation created the list first
			}
		} else {
			_, err = s.kv.Update(ctx, key, bits, rev)
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // another revocation won; read again
			}
		}
		if err != nil {
			return false, fmt.Errorf("revoke %s[%d]: %w", list, index, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("revoke %s[%d]: gave up after %d conflicting attempts", list, index, maxCASAttempts)
}

// Bits returns the current bits of list and their revision (0: nothing
// revoked yet, all bits clear).
func (s *Store) Bits(ctx context.Context, list string) (Bits, uint64, error) {
	if err := checkList(list); err != nil {
		return nil, 0, err
	}
	b, rev, err := s.get(ctx, bitsKey(list))
	if err != nil {
		return nil, 0, fmt.Errorf("status list %s: %w", list, err)
	}
	return b, rev, nil
}

func (s *Store) get(ctx context.Context, key string) (Bits, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return NewBits(), 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if len(e.Value()) != ListBytes {
		return nil, 0, fmt.Errorf("stored list %s has %d bytes, want %d", key, len(e.Value()), ListBytes)
	}
	b := make(Bits, ListBytes)
	copy(b, e.Value())
	return b, e.Revision(), nil
}

// Watch calls fn with the bits of list now and after every change, until
// ctx ends or fn returns an error. It runs in the caller's goroutine: the
// publisher that republishes the list credential owns it. Changes that
// arrive while fn runs are coalesced (the bucket keeps the latest value).
func (s *Store) Watch(ctx context.Context, list string, fn func(bits Bits, revision uint64) error) error {
	if err := checkList(list); err != nil {
		return err
	}
	w, err := s.kv.Watch(ctx, bitsKey(list))
	if err != nil {
		return fmt.Errorf("watch status list %s: %w", list, err)
	}
	defer w.Stop()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch status list %s: watcher closed", list)
			}
			if e == nil { // end of the initial values
				if initial {
					initial = false
					b, rev, err := s.Bits(ctx, list)
					if err != nil {
						return err
					}
					if rev == 0 {
						if err := fn(b, 0); err != nil {
							return err
						}
					}
				}
				continue
			}
			if e.Operation() != jetstream.KeyValuePut || len(e.Value()) != ListBytes {
				continue
			}
			b := make(Bits, ListBytes)
			copy(b, e.Value())
			if err := fn(b, e.Revision()); err != nil {
				return err
			}
		}
	}
}
