package pipeline

import "github.com/certd-dev/certd/internal/lms"

// The LMS bodies live in package lms, which has no NATS dependency. These
// forwarding names keep existing callers compiling; new code should use
// package lms directly.

// Request is lms.Request.
type Request = lms.Request

// BadRequestError is lms.BadRequestError.
type BadRequestError = lms.BadRequestError

// MaxNameRunes is lms.MaxNameRunes.
const MaxNameRunes = lms.MaxNameRunes

// Forwarders to package lms.
var (
	ParseRequest  = lms.ParseRequest
	IsBadRequest  = lms.IsBadRequest
	NewUUID       = lms.NewUUID
	IsUUID        = lms.IsUUID
	SuccessAnswer = lms.SuccessAnswer
	RemoveAnswer  = lms.RemoveAnswer
	ErrorAnswer   = lms.ErrorAnswer
)
