package control

import (
	"strconv"
	"unicode/utf8"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// forDisplay fills the display-only text fields of records on their way
// out of GetJob and ListJobs, so that grpcurl shows the LMS request and the
// answer as JSON text instead of base64. The bytes fields stay as stored.
// It changes the records in place: they are fresh copies read for this
// call, never the stored values.
func forDisplay(recs ...*certdv1.JobRecord) {
	for _, r := range recs {
		if r == nil {
			continue
		}
		r.RequestText, r.RequestEscaped = displayText(r.Request)
		r.AnswerText, r.AnswerEscaped = displayText(r.Answer)
	}
}

// displayText is b as text: as is when it is valid UTF-8, else a Go-quoted
// string literal in which each invalid byte is \xNN, so nothing is lost.
func displayText(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return strconv.Quote(string(b)), true
}
