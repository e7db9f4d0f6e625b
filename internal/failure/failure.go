// Package failure is certd's one vocabulary for what a failed step means
// for its job. Every error that reaches a job boundary is one of three
// kinds:
//
//   - Invalid: the job itself is at fault (a bad body, an unknown course, a
//     name no font can draw). Retrying cannot help; the LMS is answered with
//     an error now.
//   - Transient: something around the job failed (storage, NATS, xqueue
//     unreachable). The job is retried with backoff and, after its last
//     attempt, held.
//   - Held: the job cannot go on without an operator (xqueue refused the
//     answer, retries exhausted). It waits for Requeue or Fail, or for the
//     reaper's grace period.
//
// Leaf packages do not decide kinds: they return plain errors, exposing
// sentinels (errors.Is) for the conditions a caller may care about. The
// job boundary (consumer.Classify for the consumers, and in the bridge the
// relay's classifier) is the only place that maps errors to kinds; it
// wraps them with E so that the kind travels with the error. KindOf reads
// the kind back anywhere up the stack.
//
// Invariant: an error without a kind is Transient. An unknown failure is
// retried, never answered as the job's fault.
package failure

import (
	"errors"
	"strings"
)

// Kind is what a failure means for its job.
type Kind uint8

// The kinds, from the least to the most severe for the job. Transient is
// the zero value: an error nobody classified is retried.
const (
	Transient Kind = iota // retry with backoff
	Invalid               // answer the LMS with an error now
	Held                  // wait for an operator
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Invalid:
		return "invalid"
	case Held:
		return "held"
	}
	return "unknown kind"
}

// Error is a failure with the operation that failed and its kind.
type Error struct {
	Op   string // what was being done, e.g. "render" or "consumer.handle"
	Kind Kind
	Err  error // the cause; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Err != nil {
		if e.Op != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	} else {
		if e.Op != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Kind.String())
	}
	return b.String()
}

// Unwrap returns the cause, so errors.Is and errors.As see through Error.
func (e *Error) Unwrap() error { return e.Err }

// E returns an error of kind k for op, caused by err. A nil err gives an
// error whose text is the kind.
func E(op string, k Kind, err error) error { return &Error{Op: op, Kind: k, Err: err} }

// KindOf is the kind of err: that of the outermost *Error in its chain, or
// Transient for an error that carries none (and for nil).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Transient
}

// Is reports whether err carries kind k.
func Is(k Kind, err error) bool { return err != nil && KindOf(err) == k }
