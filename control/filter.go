package control

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Page sizes of ListJobs.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// filter is a checked JobFilter.
type filter struct {
	states       map[certdv1.JobState]bool
	action       certdv1.Action
	source       certdv1.Source
	course, user string
	since, until time.Time
}

// newFilter checks f; nil matches everything.
func newFilter(f *certdv1.JobFilter) (*filter, error) {
	out := &filter{}
	if f == nil {
		return out, nil
	}
	for _, st := range f.States {
		if _, ok := certdv1.JobState_name[int32(st)]; !ok || st == certdv1.JobState_JOB_STATE_UNSPECIFIED {
			return nil, invalid("filter.states: unknown state %d", st)
		}
		if out.states == nil {
			out.states = map[certdv1.JobState]bool{}
		}
		out.states[st] = true
	}
	if _, ok := certdv1.Action_name[int32(f.Action)]; !ok {
		return nil, invalid("filter.action: unknown action %d", f.Action)
	}
	if _, ok := certdv1.Source_name[int32(f.Source)]; !ok {
		return nil, invalid("filter.source: unknown source %d", f.Source)
	}
	out.action, out.source = f.Action, f.Source
	out.course, out.user = strings.TrimSpace(f.CourseId), f.Username
	if f.Since != nil {
		if err := f.Since.CheckValid(); err != nil {
			return nil, invalid("filter.since: %v", err)
		}
		out.since = f.Since.AsTime()
	}
	if f.Until != nil {
		if err := f.Until.CheckValid(); err != nil {
			return nil, invalid("filter.until: %v", err)
		}
		out.until = f.Until.AsTime()
	}
	if !out.since.IsZero() && !out.until.IsZero() && !out.since.Before(out.until) {
		return nil, invalid("filter: since (%s) must be before until (%s)", out.since.Format(time.RFC3339), out.until.Format(time.RFC3339))
	}
	return out, nil
}

// empty reports whether the filter matches every job.
func (f *filter) empty() bool {
	return len(f.states) == 0 && f.action == 0 && f.source == 0 && f.course == "" && f.user == "" &&
		f.since.IsZero() && f.until.IsZero()
}

func (f *filter) match(r *certdv1.JobRecord) bool {
	if len(f.states) > 0 && !f.states[r.State] {
		return false
	}
	if f.action != 0 && r.Action != f.action {
		return false
	}
	if f.source != 0 && r.Source != f.source {
		return false
	}
	if f.course != "" && r.CourseId != f.course {
		return false
	}
	if f.user != "" && r.Username != f.user {
		return false
	}
	if !f.since.IsZero() || !f.until.IsZero() {
		created := r.CreatedAt.AsTime()
		if !f.since.IsZero() && created.Before(f.since) {
			return false
		}
		if !f.until.IsZero() && !created.Before(f.until) {
			return false
		}
	}
	return true
}

// newestFirst orders records by creation time, newest first, then by id:
// a total order, so pages never overlap or skip.
func newestFirst(a, b *certdv1.JobRecord) int {
	if c := compareTime(b.CreatedAt.AsTime(), a.CreatedAt.AsTime()); c != 0 {
		return c
	}
	return cmp.Compare(a.Id, b.Id)
}

func compareTime(a, b time.Time) int { return a.Compare(b) }

// A page token names the last job of the previous page (its creation time
// and id) and the filter it was made for. Later pages are read relative to
// that position, so jobs created meanwhile do not shift them.
type pageToken struct {
	created int64 // unix nanoseconds
	id      string
	filter  [8]byte
}

const tokenVersion = 1

func filterHash(f *certdv1.JobFilter) [8]byte {
	var out [8]byte
	if f == nil {
		f = &certdv1.JobFilter{}
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	sum := sha256.Sum256(b)
	copy(out[:], sum[:])
	return out
}

func (t pageToken) encode() string {
	b := make([]byte, 0, 1+8+8+len(t.id))
	b = append(b, tokenVersion)
	b = append(b, t.filter[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.created))
	b = append(b, t.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1+8+8+1 || b[0] != tokenVersion {
		return pageToken{}, false
	}
	var t pageToken
	copy(t.filter[:], b[1:9])
	t.created = int64(binary.BigEndian.Uint64(b[9:17]))
	t.id = string(b[17:])
	return t, true
}

// after reports whether r comes after the token's position in newest-first
// order.
func (t pageToken) after(r *certdv1.JobRecord) bool {
	c := r.CreatedAt.AsTime().UnixNano()
	if c != t.created {
		return c < t.created
	}
	return r.Id > t.id
}

// sortNewestFirst sorts records in place.
func sortNewestFirst(recs []*certdv1.JobRecord) { slices.SortFunc(recs, newestFirst) }
