package xqueue

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Errors returned (wrapped) by Client methods; test them with errors.Is.
var (
	// ErrQueueEmpty: get_submission found nothing to hand out ("Queue 'Q' is
	// empty"), which is also the answer when every submission is leased.
	ErrQueueEmpty = errors.New("queue is empty")

	// ErrQueueNotFound: xqueue does not know the configured queue
	// ("Queue 'Q' not found", "Valid queue names are: ..."). Permanent.
	ErrQueueNotFound = errors.New("queue not found")

	// ErrIncorrectKey: put_result carried a key that is not the
	// submission's current one ("Incorrect key for submission"), typically
	// because the lease expired and the submission was pulled again with a
	// new key. Permanent for that key.
	ErrIncorrectKey = errors.New("incorrect key for submission")

	// ErrNoSubmission: put_result named a submission_id xqueue does not
	// have ("Submission does not exist"). Permanent.
	ErrNoSubmission = errors.New("submission does not exist")

	// ErrRejected: xqueue answered return_code 1 with another message, such
	// as "Incorrect reply format". Permanent for that request.
	ErrRejected = errors.New("rejected by xqueue")

	// ErrBadReply: the reply could not be understood (not JSON, wrong
	// types, nested strings that are not JSON, unexpected HTTP status or
	// redirect, too large). Permanent for that reply.
	ErrBadReply = errors.New("malformed xqueue reply")

	// ErrAuth: xqueue refused the credentials ("Incorrect login
	// credentials", "Insufficient login info") or the basic-auth front
	// answered 401. A permanent configuration error.
	ErrAuth = errors.New("xqueue authentication failed")

	// ErrUnavailable: xqueue could not be reached or answered 5xx, and the
	// retries were used up. Transient: try again later.
	ErrUnavailable = errors.New("xqueue unavailable")

	// ErrOutcomeUnknown: a put_result may have reached xqueue (and the LMS)
	// but no answer came: client timeout, 500, 504, a connection lost after
	// sending, or an unreadable answer. It is never retried automatically,
	// because a retry that lands posts a second LMS callback. Treat it as
	// "maybe done": if xqueue offers the submission again after its lease,
	// answer that offer with the new key.
	ErrOutcomeUnknown = errors.New("put_result outcome unknown")

	// ErrInvalidArgument: the caller passed something that cannot be sent
	// (a header without id or key, a result body that is not JSON).
	ErrInvalidArgument = errors.New("invalid argument")
)

// ErrTooLarge: a reply was larger than Config.MaxReplyBytes. It also wraps
// ErrBadReply.
var ErrTooLarge = errors.New("reply too large")

// TooLargeError is a get_submission reply too large to read. What could be
// recovered from its start is kept, so that the caller can answer the
// submission with an error once instead of seeing it offered forever:
// Header.SubmissionID is 0 when nothing was recovered.
type TooLargeError struct {
	Limit    int64
	Header   Header
	Username string // from the job body, if it could be read
	CourseID string
}

func (e *TooLargeError) Error() string {
	if e.Header.SubmissionID > 0 {
		return fmt.Sprintf("%v: submission %d: reply larger than %d bytes", ErrBadReply, e.Header.SubmissionID, e.Limit)
	}
	return fmt.Sprintf("%v: reply larger than %d bytes", ErrBadReply, e.Limit)
}

// Unwrap makes errors.Is match ErrBadReply and ErrTooLarge.
func (e *TooLargeError) Unwrap() []error { return []error{ErrBadReply, ErrTooLarge} }

// Patterns over the raw reply: the header and body are JSON strings inside
// a JSON string, so their quotes arrive escaped once or twice.
var (
	reSubmissionID  = regexp.MustCompile(`submission_id[\\"]*\s*:\s*[\\"]*(\d{1,18})`)
	reSubmissionKey = regexp.MustCompile(`submission_key[\\"]*\s*:\s*[\\]*"([0-9A-Za-z_-]{1,128})[\\]*"`)
	reUsername      = regexp.MustCompile(`\busername[\\"]*\s*:\s*[\\]*"([^\\"]{1,150})[\\]*"`)
	reCourseID      = regexp.MustCompile(`\bcourse_id[\\"]*\s*:\s*[\\]*"([^\\"]{1,255})[\\]*"`)
)

// maxRecoverScan bounds how much of a too-large reply is searched.
const maxRecoverScan = 16 << 10

// newTooLarge recovers what it can from the start of a too-large reply.
func newTooLarge(start []byte, limit int64) *TooLargeError {
	e := &TooLargeError{Limit: limit}
	head := start[:min(len(start), maxRecoverScan)]
	id, key := reSubmissionID.FindSubmatch(head), reSubmissionKey.FindSubmatch(head)
	if id != nil && key != nil {
		if n, err := strconv.ParseInt(string(id[1]), 10, 64); err == nil && n > 0 {
			e.Header = Header{SubmissionID: n, SubmissionKey: string(key[1])}
		}
	}
	if m := reUsername.FindSubmatch(head); m != nil {
		e.Username = string(m[1])
	}
	if m := reCourseID.FindSubmatch(head); m != nil {
		e.CourseID = string(m[1])
	}
	return e
}
