package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Request is a certificate job body as the LMS sends it (spec section 2).
type Request struct {
	Action             string
	Username           string
	CourseID           string
	CourseName         string
	Name               string
	Grade              string
	IssuedDate         string
	Designation        string
	TemplatePDF        string
	DeleteDownloadUUID string
	DeleteVerifyUUID   string
	ExampleCertificate bool
}

// BadRequestError is a job body certd cannot act on. It is permanent: the
// same body will always fail, so it is answered with an error at once.
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

// IsBadRequest reports whether err is (or wraps) a BadRequestError.
func IsBadRequest(err error) bool {
	var b *BadRequestError
	return errors.As(err, &b)
}

func badRequest(format string, args ...any) error {
	return &BadRequestError{Reason: fmt.Sprintf(format, args...)}
}

// Limits on request fields. A learner's name longer than MaxNameRunes is
// refused with a clear error rather than drawn in a microscopic font.
const (
	MaxNameRunes  = 300
	maxFieldRunes = 1000
	maxBodyBytes  = 64 << 10
)

// ParseRequest decodes an xqueue_body. It tolerates what the LMS really
// sends (numbers or booleans where strings are expected, extra fields) and
// fails with a BadRequestError that names the problem otherwise. When the
// body is an object but invalid, the returned Request still carries the
// username and course id it could read, for the error answer.
func ParseRequest(body []byte) (Request, error) {
	var r Request
	if len(body) > maxBodyBytes {
		return r, badRequest("job body is %d bytes; the limit is %d", len(body), maxBodyBytes)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return r, badRequest("job body is not a JSON object")
	}
	var errs []string
	str := func(key string) string {
		v, ok := raw[key]
		if !ok {
			return ""
		}
		s, err := scalar(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", key, err))
			return ""
		}
		if !utf8.ValidString(s) {
			errs = append(errs, key+" is not valid UTF-8")
			return ""
		}
		return s
	}
	r.Action = strings.TrimSpace(str("action"))
	r.Username = str("username")
	r.CourseID = strings.TrimSpace(str("course_id"))
	r.CourseName = str("course_name")
	r.Name = str("name")
	r.Grade = strings.TrimSpace(str("grade"))
	r.IssuedDate = strings.TrimSpace(str("issued_date"))
	r.Designation = str("designation")
	r.TemplatePDF = strings.TrimSpace(str("template_pdf"))
	r.DeleteDownloadUUID = strings.TrimSpace(str("delete_download_uuid"))
	r.DeleteVerifyUUID = strings.TrimSpace(str("delete_verify_uuid"))
	if v, ok := raw["example_certificate"]; ok {
		s, _ := scalar(v)
		r.ExampleCertificate = s == "true" || s == "True" || s == "1"
	}
	if len(errs) > 0 {
		return r, badRequest("bad field %s", strings.Join(errs, "; "))
	}
	for k, v := range map[string]string{"username": r.Username, "course_id": r.CourseID, "course_name": r.CourseName, "designation": r.Designation, "grade": r.Grade} {
		if n := utf8.RuneCountInString(v); n > maxFieldRunes {
			return r, badRequest("%s is %d characters long; the limit is %d", k, n, maxFieldRunes)
		}
	}
	switch {
	case r.Action == "":
		return r, badRequest("missing action")
	case r.Username == "":
		return r, badRequest("missing username")
	case r.CourseID == "":
		return r, badRequest("missing course_id")
	}
	if _, ok := ParseAction(r.Action); !ok {
		return r, badRequest("unknown action %q", clip(r.Action, 40))
	}
	if r.Action != "remove" {
		if strings.TrimSpace(r.Name) == "" {
			return r, badRequest("missing name")
		}
		if !visible(r.Name) {
			// Only spaces, control, format or bidi characters.
			return r, badRequest("name has no printable characters")
		}
		if n := utf8.RuneCountInString(r.Name); n > MaxNameRunes {
			return r, badRequest("name is %d characters long; the limit is %d", n, MaxNameRunes)
		}
	}
	if r.Action != "create" {
		for k, v := range map[string]string{"delete_download_uuid": r.DeleteDownloadUUID, "delete_verify_uuid": r.DeleteVerifyUUID} {
			if v != "" && !IsUUID(v) {
				return r, badRequest("%s is not 32 lowercase hex characters", k)
			}
		}
	}
	return r, nil
}

// scalar turns a JSON string, number, boolean or null into a string.
func scalar(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", errors.New("not a string")
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return "", errors.New("not a boolean")
		}
		return strconv.FormatBool(b), nil
	case '{', '[':
		return "", errors.New("must be a string, not an object or list")
	default:
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", errors.New("not a number")
		}
		return n.String(), nil
	}
}

// visible reports whether s has a letter, digit, punctuation or symbol:
// something a certificate can show.
func visible(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}) >= 0
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// NewUUID returns a random uuid4 as 32 lowercase hex characters, the form the
// LMS stores for download_uuid and verify_uuid.
func NewUUID() string {
	return strings.ReplaceAll(uuid.NewString(), "-", "")
}

// IsUUID reports whether s is 32 lowercase hex characters. Only such strings
// are ever used to build storage keys.
func IsUUID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SuccessAnswer is the body posted back for a created certificate (spec
// section 3).
func SuccessAnswer(action, downloadUUID, verifyUUID, username, courseID, url string) []byte {
	return mustJSON(map[string]string{
		"action": action, "download_uuid": downloadUUID, "verify_uuid": verifyUUID,
		"username": username, "course_id": courseID, "url": url,
	})
}

// RemoveAnswer is the body posted back for a removed certificate.
func RemoveAnswer(username, courseID string) []byte {
	return mustJSON(map[string]string{"action": "remove", "username": username, "course_id": courseID})
}

// ErrorAnswer is the body posted back when a job failed; the LMS stores
// reason as the certificate's error_reason.
func ErrorAnswer(username, courseID, reason string) []byte {
	return mustJSON(map[string]string{
		"error":        "There was an error processing the certificate request: " + reason,
		"username":     username,
		"course_id":    courseID,
		"error_reason": reason,
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return b
}
