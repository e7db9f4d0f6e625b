package statuslist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Entry is what the bucket keeps about one certificate's credential (key
// cert.<owner>, the owner being the certificate's verify uuid): where its
// status bit is, what its verification page shows (so the page can be
// drawn again as revoked), and the revocation, once there is one.
//
// Invariant: an owner's index is handed out once (Reserve) and never
// changes, so a redelivered job signs the same credentialStatus again.
type Entry struct {
	List  string `json:"list"`
	Index int    `json:"index"`
	// Page is the verification page's input (JSON of pages.Certificate),
	// opaque here; empty when it was too large to keep.
	Page      json.RawMessage `json:"page,omitempty"`
	RevokedAt *time.Time      `json:"revoked_at,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

// MaxPage bounds Entry.Page; a larger page input is not kept.
const MaxPage = 8 << 10

// ErrNoEntry: the owner has no entry (a certificate issued without a
// credential, or by a certd that kept none).
var ErrNoEntry = errors.New("no credential status recorded for this certificate")

var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func entryKey(owner string) string { return "cert." + owner }

func checkOwner(owner string) error {
	if !ownerPattern.MatchString(owner) {
		return fmt.Errorf("status entry owner %q: want 1-64 of [A-Za-z0-9_-]", owner)
	}
	return nil
}

// Reserve returns owner's entry, creating it with a newly allocated index
// of the current list (see Current) when there is none. Redeliveries of one
// job (same owner) get the same index; two racing first deliveries agree on
// the entry that was created first (the loser's allocated index stays
// unused). page replaces the stored page input when it differs.
func (s *Store) Reserve(ctx context.Context, owner string, page []byte) (Entry, error) {
	if err := checkOwner(owner); err != nil {
		return Entry{}, err
	}
	if len(page) > MaxPage {
		page = nil
	}
	for range maxCASAttempts {
		e, rev, err := s.entry(ctx, owner)
		switch {
		case errors.Is(err, ErrNoEntry):
			list, idx, err := s.allocateCurrent(ctx)
			if err != nil {
				return Entry{}, err
			}
			e = Entry{List: list, Index: idx, Page: page}
			b, _ := json.Marshal(e)
			if _, err := s.kv.Create(ctx, entryKey(owner), b); errors.Is(err, jetstream.ErrKeyExists) {
				continue // a concurrent delivery reserved first: use its index
			} else if err != nil {
				return Entry{}, fmt.Errorf("reserve status index for %s: %w", owner, err)
			}
			return e, nil
		case err != nil:
			return Entry{}, err
		}
		if page == nil || string(e.Page) == string(page) {
			return e, nil
		}
		e.Page = page
		b, _ := json.Marshal(e)
		if _, err := s.kv.Update(ctx, entryKey(owner), b, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return Entry{}, fmt.Errorf("update status entry of %s: %w", owner, err)
		}
		return e, nil
	}
	return Entry{}, fmt.Errorf("reserve status index for %s: too many conflicting updates", owner)
}

// currentKey holds the id of the list new credentials go to: "1", then
// "2" once list 1 is full, and so on. It only ever moves forward.
const currentKey = "current"

// maxLists bounds the number of lists (each holds about 120,000
// credentials before it counts as full).
const maxLists = 10000

// Current returns the id of the list new credentials go to ("1" until it
// fills up) and the key's revision (0: never moved).
func (s *Store) Current(ctx context.Context) (string, uint64, error) {
	e, err := s.kv.Get(ctx, currentKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "1", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("current status list: %w", err)
	}
	return string(e.Value()), e.Revision(), nil
}

// allocateCurrent allocates an index in the current list, moving the
// current list on (compare-and-set, so racing allocators agree) when it is
// full.
func (s *Store) allocateCurrent(ctx context.Context) (string, int, error) {
	for range maxCASAttempts {
		list, rev, err := s.Current(ctx)
		if err != nil {
			return "", 0, err
		}
		idx, err := s.Allocate(ctx, list)
		if err == nil {
			return list, idx, nil
		}
		if !errors.Is(err, ErrListFull) {
			return "", 0, err
		}
		n, _ := strconv.Atoi(list)
		if n <= 0 || n >= maxLists {
			return "", 0, fmt.Errorf("status list %s is full and cannot move on: %w", list, err)
		}
		next := []byte(strconv.Itoa(n + 1))
		if rev == 0 {
			_, err = s.kv.Create(ctx, currentKey, next)
		} else {
			_, err = s.kv.Update(ctx, currentKey, next, rev)
		}
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return "", 0, fmt.Errorf("move to status list %d: %w", n+1, err)
		}
	}
	return "", 0, errors.New("allocate a status index: too many conflicting updates")
}

// Entry returns owner's entry, or an error wrapping ErrNoEntry.
func (s *Store) Entry(ctx context.Context, owner string) (Entry, error) {
	if err := checkOwner(owner); err != nil {
		return Entry{}, err
	}
	e, _, err := s.entry(ctx, owner)
	return e, err
}

func (s *Store) entry(ctx context.Context, owner string) (Entry, uint64, error) {
	kve, err := s.kv.Get(ctx, entryKey(owner))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, 0, fmt.Errorf("%s: %w", owner, ErrNoEntry)
	}
	if err != nil {
		return Entry{}, 0, fmt.Errorf("status entry of %s: %w", owner, err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return Entry{}, 0, fmt.Errorf("status entry of %s: %w", owner, err)
	}
	return e, kve.Revision(), nil
}

// RevokeCertificate sets owner's status bit (through Revoke, the one
// compare-and-set owner of the bits) and then records when and why in its
// entry. Revoking again keeps the first date and reason and reports
// changed false. It returns the entry as stored.
func (s *Store) RevokeCertificate(ctx context.Context, owner string, at time.Time, reason string) (Entry, bool, error) {
	if err := checkOwner(owner); err != nil {
		return Entry{}, false, err
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	for range maxCASAttempts {
		e, rev, err := s.entry(ctx, owner)
		if err != nil {
			return Entry{}, false, err
		}
		bitChanged, err := s.Revoke(ctx, e.List, e.Index)
		if err != nil {
			return Entry{}, false, err
		}
		if e.RevokedAt != nil {
			return e, bitChanged, nil
		}
		t := at.UTC().Truncate(time.Second)
		e.RevokedAt, e.Reason = &t, reason
		b, _ := json.Marshal(e)
		if _, err := s.kv.Update(ctx, entryKey(owner), b, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return Entry{}, false, fmt.Errorf("record revocation of %s: %w", owner, err)
		}
		return e, true, nil
	}
	return Entry{}, false, fmt.Errorf("revoke %s: too many conflicting updates", owner)
}

// ForgetPage drops the page input (the learner's name and course) from
// owner's entry, keeping its list, index and revocation: for certificates
// that are deleted and will never be drawn again. No entry is no error.
func (s *Store) ForgetPage(ctx context.Context, owner string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	for range maxCASAttempts {
		e, rev, err := s.entry(ctx, owner)
		if errors.Is(err, ErrNoEntry) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(e.Page) == 0 {
			return nil
		}
		e.Page = nil
		b, _ := json.Marshal(e)
		if _, err := s.kv.Update(ctx, entryKey(owner), b, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("forget the page of %s: %w", owner, err)
		}
		return nil
	}
	return fmt.Errorf("forget the page of %s: too many conflicting updates", owner)
}
