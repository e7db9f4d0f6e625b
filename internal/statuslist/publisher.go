package statuslist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Publisher keeps one published status list credential up to date with the
// bits in the Store: it publishes at start, after every change (changes that
// arrive while it publishes are coalesced into one publication of the latest
// bits), and re-reads the bits every Resync in case a change notification
// was missed. Run it in one goroutine per list, in one process (two
// publishers are harmless: both publish the latest bits).
type Publisher struct {
	Store     *Store
	List      string // list id in the Store ("1")
	URL       string // where the list credential is published; its id
	IssuerDID string
	TTL       time.Duration // ttl of the credential; serve with Cache-Control max-age=TTL
	// Sign signs the unsigned list credential (credential.Suite.Sign).
	Sign func(ctx context.Context, unsigned []byte) ([]byte, error)
	// Put stores the signed list credential at URL's storage key.
	Put func(ctx context.Context, signed []byte) error
	// Resync is the longest time a change can stay unpublished if its
	// notification is lost (default 30s).
	Resync time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// Run publishes until ctx ends. It returns ctx's error, or the first error
// of reading the bucket; a failed Sign or Put is logged and retried at the
// next change or resync.
func (p *Publisher) Run(ctx context.Context) error {
	if p.Store == nil || p.Sign == nil || p.Put == nil {
		return errors.New("status list publisher: Store, Sign and Put are required")
	}
	if err := checkList(p.List); err != nil {
		return err
	}
	resync := p.Resync
	if resync <= 0 {
		resync = 30 * time.Second
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	w, err := p.Store.kv.Watch(ctx, bitsKey(p.List), jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("status list %s: watch: %w", p.List, err)
	}
	defer w.Stop()
	tick := time.NewTicker(resync)
	defer tick.Stop()

	var published uint64
	first := true
	publish := func() error {
		bits, rev, err := p.Store.Bits(ctx, p.List)
		if err != nil {
			return err
		}
		if !first && rev == published {
			return nil
		}
		if err := p.publish(ctx, bits); err != nil {
			log.Error("status list not published; retrying at the next change", "list", p.List, "revision", rev, "err", err)
			return nil
		}
		first = false
		published = rev
		log.Info("status list published", "list", p.List, "revision", rev)
		return nil
	}
	if err := publish(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("status list %s: watcher closed", p.List)
			}
			// Coalesce whatever else is already waiting.
			for drained := false; !drained; {
				select {
				case _, ok := <-w.Updates():
					if !ok {
						return fmt.Errorf("status list %s: watcher closed", p.List)
					}
				default:
					drained = true
				}
			}
		case <-tick.C:
		}
		if err := publish(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("status list %s: %w", p.List, err)
		}
	}
}

func (p *Publisher) publish(ctx context.Context, bits Bits) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	unsigned, err := BuildCredential(List{URL: p.URL, IssuerDID: p.IssuerDID, ValidFrom: now(), TTL: p.TTL, Bits: bits})
	if err != nil {
		return err
	}
	signed, err := p.Sign(ctx, unsigned)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if err := p.Put(ctx, signed); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	return nil
}

// Publishers keeps every list in use published: a Publisher for each list
// from "1" to the current one (Store.Current), started as the current list
// moves on. Run it in one goroutine per process; it owns the publishers it
// starts and stops them when ctx ends.
type Publishers struct {
	Store     *Store
	IssuerDID string
	TTL       time.Duration
	// URL is where list's credential is published.
	URL func(list string) string
	// Sign signs an unsigned list credential.
	Sign func(ctx context.Context, unsigned []byte) ([]byte, error)
	// Put stores list's signed credential.
	Put    func(ctx context.Context, list string, signed []byte) error
	Resync time.Duration
	Log    *slog.Logger
}

// Run publishes until ctx ends or a publisher fails (its error is
// returned, after every publisher stopped).
func (ps *Publishers) Run(ctx context.Context) error {
	if ps.Store == nil || ps.URL == nil || ps.Put == nil || ps.Sign == nil {
		return errors.New("status list publishers: Store, URL, Sign and Put are required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := ps.Store.kv.Watch(ctx, currentKey)
	if err != nil {
		return fmt.Errorf("watch the current status list: %w", err)
	}
	defer w.Stop()
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, runs first)
	errs := make(chan error, 1)
	running := 0
	start := func(upTo int) {
		for ; running < min(upTo, maxLists); running++ {
			list := strconv.Itoa(running + 1)
			p := &Publisher{
				Store: ps.Store, List: list, URL: ps.URL(list), IssuerDID: ps.IssuerDID, TTL: ps.TTL,
				Sign: ps.Sign, Resync: ps.Resync, Log: ps.Log,
				Put: func(ctx context.Context, signed []byte) error { return ps.Put(ctx, list, signed) },
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.Run(ctx); err != nil && ctx.Err() == nil {
					select {
					case errs <- err:
					default:
					}
				}
			}()
		}
	}
	start(1)
	for {
		select {
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		case err := <-errs:
			cancel()
			return err
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return errors.New("watch the current status list: watcher closed")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if n, err := strconv.Atoi(string(e.Value())); err == nil {
				start(n)
			}
		}
	}
}
