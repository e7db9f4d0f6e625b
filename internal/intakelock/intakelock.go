// Package intakelock makes sure that at most one bridge pulls from an
// xqueue queue at a time, however many bridges run (for availability or in
// several regions). xqueue's get_submission is not atomic: two pulls at the
// same moment hand out one submission under two keys, and a late pull can
// bring back a submission that was already answered. One puller per queue
// avoids both.
//
// The lock is one key per queue in the JetStream KV bucket
// certs_intake_lock. Invariants:
//
//   - A bridge takes a free lock with create-if-absent; the value names the
//     holder (id, host, region, pid) for GetStatus.
//   - The holder renews every TTL/3 by compare-and-set on its own revision;
//     every renewal changes the revision.
//   - The holder stops its work (the tenure context ends) once TTL minus a
//     guard of TTL/4 has passed since the start of its last successful
//     renewal, measured on its own monotonic clock by a timer that does
//     not wait for a renewal call to return, or at once when a renewal
//     finds the key changed (it was taken over).
//   - A standby takes over a lock only by compare-and-set, and only after it
//     has itself observed the same revision unchanged for a full TTL on its
//     own monotonic clock. Clocks of different hosts are never compared:
//     the times stored in the value are for people only.
//   - On shutdown the holder deletes the key if it still holds its own
//     revision, so a standby takes over at once (it watches the key).
//
// Hence the old holder has stopped pulling at least TTL/4 before any
// standby can start, as long as the hosts' clocks run at about the same
// rate.
package intakelock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/ensure"
)

// Bucket is the KV bucket holding one lock key per queue.
const Bucket = "certs_intake_lock"

// DefaultTTL is how long a lock outlives its holder's last renewal.
const DefaultTTL = 15 * time.Second

// Holder is the value stored under a lock key.
type Holder struct {
	ID     string `json:"id"`
	Queue  string `json:"queue"`
	Host   string `json:"host,omitempty"`
	Region string `json:"region,omitempty"`
	PID    int    `json:"pid,omitempty"`
	// TTLMillis is the holder's TTL, for display.
	TTLMillis int64 `json:"ttl_ms"`
	// Since is when the holder last wrote the lock (taken or renewed), on
	// the holder's clock: for people only, never compared across hosts.
	Since time.Time `json:"since"`
}

// Entry is a lock key as read from the bucket.
type Entry struct {
	Holder
	Revision uint64
}

// OpenBucket creates or opens the lock bucket.
func OpenBucket(ctx context.Context, js jetstream.JetStream, replicas int, placement *jetstream.Placement) (jetstream.KeyValue, error) {
	kv, err := ensure.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "one xqueue puller per queue: the intake lock",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Placement:   placement,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

var keyChars = regexp.MustCompile(`[^-_=.a-zA-Z0-9]`)

// Key is the lock key of a queue.
func Key(queue string) string {
	return "queue." + keyChars.ReplaceAllString(queue, "_")
}

// Holders lists the current lock holders. A missing bucket means no bridge
// has pulled yet: no holders.
func Holders(ctx context.Context, js jetstream.JetStream) ([]Entry, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Bucket, err)
	}
	var out []Entry
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		var h Holder
		if err := json.Unmarshal(e.Value(), &h); err != nil {
			continue
		}
		out = append(out, Entry{Holder: h, Revision: e.Revision()})
	}
	return out, nil
}

// Lock is one bridge's side of the lock of one queue.
type Lock struct {
	kv  jetstream.KeyValue
	key string
	ttl time.Duration
	me  Holder
	log *slog.Logger

	mu      sync.Mutex
	holding bool
}

// New returns the lock of queue for the holder identified by id and region.
// ttl <= 0 means DefaultTTL.
func New(kv jetstream.KeyValue, queue, id, region string, ttl time.Duration, log *slog.Logger) *Lock {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	return &Lock{
		kv: kv, key: Key(queue), ttl: ttl,
		me:  Holder{ID: id, Queue: queue, Host: host, Region: region, PID: os.Getpid(), TTLMillis: ttl.Milliseconds()},
		log: log.With("intake_lock", Key(queue), "holder", id),
	}
}

// Holding reports whether this bridge holds the lock now.
func (l *Lock) Holding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holding
}

func (l *Lock) setHolding(v bool) {
	l.mu.Lock()
	l.holding = v
	l.mu.Unlock()
}

// Run waits for the lock, and while it holds it runs work with a context
// that ends when the lock is lost, lapses or ctx ends. work must return
// soon after its context ends. When work returns early or the lock is lost
// Run waits for the lock again; it returns when ctx ends, after releasing
// the lock.
func (l *Lock) Run(ctx context.Context, work func(ctx context.Context)) error {
	for {
		rev, start, err := l.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, nats.ErrConnectionClosed) {
				return err
			}
			l.log.Warn("intake lock: standby failed; retrying", "err", err)
			t := time.NewTimer(l.ttl / 3)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		l.hold(ctx, rev, start, work)
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (l *Lock) value() []byte {
	h := l.me
	h.Since = time.Now()
	b, _ := json.Marshal(h) // plain fields: cannot fail
	return b
}

// acquire blocks until it holds the lock. It returns the revision written
// and the local time just before the write was sent.
func (l *Lock) acquire(ctx context.Context) (uint64, time.Time, error) {
	w, err := l.kv.Watch(ctx, l.key, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("watch %s: %w", l.key, err)
	}
	defer func() { _ = w.Stop() }()
	var (
		seenRev uint64
		seenAt  time.Time // local monotonic time seenRev was first observed
		logged  bool
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		case <-w.Updates():
		case <-timer.C:
		}
		start := time.Now()
		rev, err := l.kv.Create(ctx, l.key, l.value())
		if err == nil {
			l.log.Info("intake lock taken")
			return rev, start, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			if ctx.Err() != nil {
				return 0, time.Time{}, ctx.Err()
			}
			l.log.Warn("intake lock: create failed", "err", err)
			timer.Reset(l.ttl / 3)
			continue
		}
		e, err := l.kv.Get(ctx, l.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			timer.Reset(0) // released meanwhile: create again
			continue
		case err != nil:
			if ctx.Err() != nil {
				return 0, time.Time{}, ctx.Err()
			}
			l.log.Warn("intake lock: read failed", "err", err)
			timer.Reset(l.ttl / 3)
			continue
		}
		if e.Revision() != seenRev {
			seenRev, seenAt = e.Revision(), time.Now()
			if !logged {
				var h Holder
				_ = json.Unmarshal(e.Value(), &h)
				l.log.Info("intake lock held by another bridge; standing by", "by", h.ID, "by_host", h.Host, "by_region", h.Region)
				logged = true
			}
		}
		if wait := l.ttl - time.Since(seenAt); wait > 0 {
			timer.Reset(wait)
			continue
		}
		// Unchanged for a full TTL on our clock: the holder is gone.
		start = time.Now()
		rev, err = l.kv.Update(ctx, l.key, l.value(), seenRev)
		if err == nil {
			l.log.Warn("intake lock taken over from a holder that stopped renewing", "unchanged_for", time.Since(seenAt).Round(time.Millisecond))
			return rev, start, nil
		}
		seenRev = 0 // someone else was quicker, or the holder came back
		timer.Reset(0)
	}
}

// hold runs work while renewing, then releases.
func (l *Lock) hold(ctx context.Context, rev uint64, start time.Time, work func(context.Context)) {
	guard := l.ttl / 4
	tenure, end := context.WithCancelCause(ctx)
	defer end(nil)
	l.setHolding(true)
	defer l.setHolding(false)

	var (
		mu      sync.Mutex
		cur     = rev
		stolen  bool
		renewer sync.WaitGroup
	)
	// The lapse runs on its own timer, not in the renewing goroutine: a
	// renewal call that hangs (slow NATS, a stalled goroutine) must not
	// hold the tenure open past the point a standby may take over.
	lapse := time.AfterFunc(time.Until(start.Add(l.ttl-guard)), func() {
		if tenure.Err() == nil {
			l.log.Error("intake lock lapsed: no renewal succeeded in time; pulling stops")
		}
		end(errors.New("intake lock lapsed"))
	})
	defer lapse.Stop()
	renewer.Add(1)
	go func() {
		defer renewer.Done()
		tick := time.NewTicker(l.ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-tenure.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			r := cur
			mu.Unlock()
			t0 := time.Now()
			rctx, cancel := context.WithTimeout(tenure, l.ttl/3)
			next, err := l.kv.Update(rctx, l.key, l.value(), r)
			cancel()
			switch {
			case err == nil:
				mu.Lock()
				cur = next
				mu.Unlock()
				if tenure.Err() != nil {
					return // lapsed meanwhile: the tenure is over
				}
				lapse.Reset(time.Until(t0.Add(l.ttl - guard)))
			case tenure.Err() != nil:
				return
			case errors.Is(err, jetstream.ErrKeyExists) || isWrongRevision(err):
				l.log.Error("intake lock taken by another bridge; pulling stops", "err", err)
				mu.Lock()
				stolen = true
				mu.Unlock()
				end(errors.New("intake lock lost"))
				return
			default:
				l.log.Warn("intake lock renewal failed; retrying", "err", err)
			}
		}
	}()
	work(tenure)
	end(nil)
	renewer.Wait()

	mu.Lock()
	r, lost := cur, stolen
	mu.Unlock()
	if lost {
		return
	}
	// Release our own revision only: if someone took over meanwhile the
	// delete is refused.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(rctx, l.key, jetstream.LastRevision(r)); err != nil {
		l.log.Warn("intake lock release failed (a standby takes over after the TTL)", "err", err)
		return
	}
	l.log.Info("intake lock released")
}

// isWrongRevision reports a compare-and-set refused because the key moved
// on (JetStream error 10071, wrong last sequence).
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
