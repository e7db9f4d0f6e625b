package xqueue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/certd-dev/certd/bridge/xqueuetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReplyLimits: the reply cap fits the largest real job (64 KiB twice
// escaped) and put_result keeps a timeout well above xqueue's ~25 s LMS
// retries.
func TestReplyLimits(t *testing.T) {
	if DefaultMaxReplyBytes < 7*64<<10 || DefaultMaxReplyBytes > 1<<20 {
		t.Errorf("DefaultMaxReplyBytes %d: want room for a 64 KiB body escaped twice, and no more than 1 MiB", DefaultMaxReplyBytes)
	}
	if DefaultResultTimeout < 60*time.Second {
		t.Errorf("DefaultResultTimeout %v, want >= 60 s", DefaultResultTimeout)
	}
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, nil)
	// A real job at the 64 KiB limit, full of characters that escape worst,
	// still fits.
	body := `{"action": "create", "username": "jdoe", "course_id": "course-v1:a+b+c", "name": "` +
		strings.Repeat(`\"é`, (64<<10-120)/3) + `"}`
	id := s.Submit(body)
	sub, err := c.Pull(ctxT(t))
	if err != nil || sub.Header.SubmissionID != id {
		t.Fatalf("pull of a %d-byte job: %v", len(body), err)
	}
}

// TestTooLargeSubmissionHeaderRecovered: a submission too large to read is
// refused with an error that carries its header, username and course, so
// that it can be answered once with an error.
func TestTooLargeSubmissionHeaderRecovered(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.MaxReplyBytes = 8 << 10 })
	id := s.Submit(`{"action": "create", "username": "jdoe", "course_id": "course-v1:a+b+c", "name": "` + strings.Repeat("x", 20<<10) + `"}`)
	_, err := c.Pull(ctxT(t))
	var big *TooLargeError
	if !errors.As(err, &big) || !errors.Is(err, ErrBadReply) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want a TooLargeError", err)
	}
	sub, _ := s.Submission(id)
	if big.Header.SubmissionID != id || big.Header.SubmissionKey != sub.Key {
		t.Errorf("recovered header %+v, want id %d key %s", big.Header, id, sub.Key)
	}
	if big.Username != "jdoe" || big.CourseID != "course-v1:a+b+c" {
		t.Errorf("recovered username %q course %q", big.Username, big.CourseID)
	}
	if !strings.Contains(err.Error(), "larger than 8192 bytes") {
		t.Errorf("error %q does not say why", err)
	}
}

// TestSlowTrickleCutOff: a reply that trickles in slower than the request
// timeout allows is cut off with a clear error instead of holding the
// caller.
func TestSlowTrickleCutOff(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond; c.MaxAttempts = 1 })
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.Inject(xqueuetest.Fault{Endpoint: "get_queuelen", Body: `{"return_code": 0, "content": 5}`, Trickle: 100 * time.Millisecond})
	_, err := c.QueueLength(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "get_queuelen") {
		t.Fatalf("trickled reply: %v, want an error", err)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("trickle error %v should be ErrUnavailable (xqueue or the network is slow)", err)
	}
}
