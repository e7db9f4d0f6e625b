// Package lms is what certd knows of the LMS's bodies: it parses and
// validates a certificate job body (the xqueue_body edx-platform submits),
// builds the answer bodies posted back, builds job bodies exactly as the LMS
// does (for the demo and tests), parses course ids and makes the uuids that
// name a certificate's files.
//
// The package is pure: no I/O, no NATS, no clock. Invariants:
//   - ParseRequest never panics and reads at most MaxBodyBytes; every
//     refusal is a *BadRequestError whose Reason is short, specific and
//     safe to post back as the LMS's error_reason.
//   - A refused body still yields the username and course id that could be
//     read (from the object, or from the raw text when it is not JSON), so
//     the answer can be matched by the LMS.
//   - An accepted Request has a known action, a username, a parseable
//     course id, a template_pdf that is a plain file name (never a path),
//     and, unless it removes, a printable name of bounded length with no
//     control or bidi-override characters.
//   - IsUUID is the only gate for strings that become storage keys.
package lms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Request is a certificate job body as the LMS sends it.
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

// Verified reports whether the job asks for a verified certificate: the
// LMS names the template of an ID-verified learner "...-verified.pdf".
func (r Request) Verified() bool { return IsVerifiedTemplate(r.TemplatePDF) }

// IsVerifiedTemplate reports whether a template_pdf name means a verified
// certificate (it contains "verified", in any case).
func IsVerifiedTemplate(name string) bool {
	return strings.Contains(strings.ToLower(name), "verified")
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
	MaxNameRunes = 300
	// MaxBodyBytes is the largest job body accepted.
	MaxBodyBytes  = 64 << 10
	maxFieldRunes = 1000
	// MaxTemplateName is the longest template_pdf accepted (a file name).
	MaxTemplateName = 255
	// recoverWindow and recoverRunes bound the scan of a body that is not
	// JSON for its username and course id.
	recoverWindow = 64 << 10
	recoverRunes  = 255
)

// ParseRequest decodes an xqueue_body. It tolerates what the LMS really
// sends (numbers or booleans where strings are expected, null, extra
// fields) and fails with a BadRequestError that names the problem
// otherwise. When the body is invalid, the returned Request still carries
// the username and course id it could read, for the error answer: from the
// object, or, when the body is not JSON at all, from a bounded scan of the
// raw text (see RecoverIdentity).
func ParseRequest(body []byte) (Request, error) {
	var r Request
	if len(body) > MaxBodyBytes {
		r.Username, r.CourseID = RecoverIdentity(body)
		return r, badRequest("job body is %d bytes; the limit is %d", len(body), MaxBodyBytes)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		r.Username, r.CourseID = RecoverIdentity(body)
		return r, badRequest("job body is not a JSON object%s", jsonProblem(body, err))
	}
	if dec.More() {
		r.Username, r.CourseID = RecoverIdentity(body)
		return r, badRequest("job body is not a JSON object: data after the object")
	}
	var errs []string
	str := func(key string) string {
		v, ok := raw[key]
		if !ok {
			return ""
		}
		s, err := scalar(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %v", key, err))
			return ""
		}
		// encoding/json turns invalid UTF-8 into U+FFFD silently.
		if !utf8.Valid(v) || !utf8.ValidString(s) {
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
	// Identity is capped so that an error answer never echoes a huge value.
	idUser, idCourse := clipRunes(r.Username, recoverRunes), clipRunes(r.CourseID, recoverRunes)
	fail := func(err error) (Request, error) {
		r.Username, r.CourseID = idUser, idCourse
		return r, err
	}
	if len(errs) > 0 {
		return fail(badRequest("bad field: %s", strings.Join(errs, "; ")))
	}
	for _, f := range []struct{ k, v string }{
		{"username", r.Username}, {"course_id", r.CourseID}, {"course_name", r.CourseName},
		{"designation", r.Designation}, {"grade", r.Grade}, {"issued_date", r.IssuedDate},
	} {
		if n := utf8.RuneCountInString(f.v); n > maxFieldRunes {
			return fail(badRequest("%s is %d characters long; the limit is %d", f.k, n, maxFieldRunes))
		}
	}
	switch {
	case r.Action == "":
		return fail(badRequest("missing action"))
	case strings.TrimSpace(r.Username) == "":
		return fail(badRequest("missing username"))
	case r.CourseID == "":
		return fail(badRequest("missing course_id"))
	}
	if !IsAction(r.Action) {
		return fail(badRequest("unknown action %s: want create, regen or remove", quote(r.Action)))
	}
	if err := checkText("username", r.Username); err != nil {
		return fail(err)
	}
	if _, err := ParseCourseID(r.CourseID); err != nil {
		return fail(badRequest("course_id %s is not a course id: want course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN", quote(r.CourseID)))
	}
	if r.TemplatePDF != "" {
		if err := CheckTemplateName(r.TemplatePDF); err != nil {
			return fail(err)
		}
	}
	if r.Action != "remove" {
		if strings.TrimSpace(r.Name) == "" {
			return fail(badRequest("missing name"))
		}
		if n := utf8.RuneCountInString(r.Name); n > MaxNameRunes {
			return fail(badRequest("name is %d characters long; the limit is %d", n, MaxNameRunes))
		}
		if !visible(r.Name) {
			// Only spaces, control, format or bidi characters.
			return fail(badRequest("name has no printable characters"))
		}
		for _, f := range []struct{ k, v string }{{"name", r.Name}, {"designation", r.Designation}} {
			if err := checkText(f.k, f.v); err != nil {
				return fail(err)
			}
		}
		if err := checkDrawable("name", r.Name); err != nil {
			return fail(err)
		}
	}
	if r.Action != "create" {
		for _, f := range []struct{ k, v string }{{"delete_download_uuid", r.DeleteDownloadUUID}, {"delete_verify_uuid", r.DeleteVerifyUUID}} {
			if f.v != "" && !IsUUID(f.v) {
				return fail(badRequest("%s is not 32 lowercase hex characters", f.k))
			}
		}
	}
	return r, nil
}

// IsAction reports whether s is an action the LMS sends: create, regen or
// remove.
func IsAction(s string) bool { return s == "create" || s == "regen" || s == "remove" }

// CheckTemplateName refuses a template_pdf that is not a plain file name:
// a directory part, "." or "..", a leading dot-dot, a backslash, a NUL or
// other control character, or more than MaxTemplateName bytes. It is
// called before any design is looked up, so a path never reaches a file
// system.
func CheckTemplateName(name string) error {
	bad := name == "." || name == ".." || strings.HasPrefix(name, "..") ||
		strings.ContainsAny(name, `/\`) || strings.IndexFunc(name, unicode.IsControl) >= 0 || !utf8.ValidString(name)
	switch {
	case bad:
		return badRequest("template_pdf %s is not a plain file name; a certificate design is named by a file name, never a path", quote(name))
	case len(name) > MaxTemplateName:
		return badRequest("template_pdf is %d bytes long; a certificate design name is at most %d", len(name), MaxTemplateName)
	}
	return nil
}

// checkText refuses control characters (C0, C1) and bidi embeddings,
// overrides and isolates (U+202A–U+202E, U+2066–U+2069) in a text that is
// printed or shown: they can hide or reorder what a reader sees. Marks
// needed to write names (LRM, RLM, ALM, ZWJ, ZWNJ) are allowed.
func checkText(field, s string) error {
	for i, c := range s {
		switch {
		case unicode.IsControl(c):
			return badRequest("%s has a control character (U+%04X) at byte %d", field, c, i)
		case c >= 0x202a && c <= 0x202e, c >= 0x2066 && c <= 0x2069:
			return badRequest("%s has a bidi override character (U+%04X) at byte %d, which can disguise the text", field, c, i)
		}
	}
	return nil
}

// checkDrawable refuses characters that have no agreed appearance, so a
// certificate would show something other than the learner's name, or a
// font-specific picture, or nothing: private-use characters,
// noncharacters, and U+FFFD, which stands for text lost to a broken
// encoding upstream.
func checkDrawable(field, s string) error {
	for i, c := range s {
		switch {
		case c == utf8.RuneError:
			return badRequest("%s has a replacement character (U+FFFD) at byte %d: the text was damaged before it reached certd", field, i)
		case unicode.Is(unicode.Co, c):
			return badRequest("%s has a private-use character (U+%04X) at byte %d, which has no standard appearance", field, c, i)
		case c >= 0xfdd0 && c <= 0xfdef, c&0xfffe == 0xfffe:
			return badRequest("%s has a noncharacter (U+%04X) at byte %d", field, c, i)
		}
	}
	return nil
}

// jsonProblem describes why body is not a JSON object, briefly.
func jsonProblem(body []byte, err error) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return ": the body is empty"
	}
	if err == nil {
		return ": it is null"
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf(": %s at byte %d", clipRunes(se.Error(), 80), se.Offset)
	case errors.As(err, &te):
		return ": it is a JSON " + te.Value
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ": it ends early"
	}
	return ""
}

// RecoverIdentity finds the username and course_id in a body that could
// not be decoded, so that its error answer can still be matched by the
// LMS. It scans at most the first 64 KiB for `"username"` and
// `"course_id"` followed by a colon and a JSON string, and caps each value
// at 255 characters. A value it cannot read is "".
func RecoverIdentity(body []byte) (username, courseID string) {
	if len(body) > recoverWindow {
		body = body[:recoverWindow]
	}
	return recoverString(body, "username"), recoverString(body, "course_id")
}

func recoverString(b []byte, key string) string {
	pat := []byte(`"` + key + `"`)
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], pat)
		if i < 0 {
			return ""
		}
		rest := bytes.TrimLeft(b[off+i+len(pat):], " \t\r\n")
		off += i + len(pat)
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			continue
		}
		// Find the closing quote, skipping escapes.
		end := -1
		for j := 1; j < len(rest); j++ {
			if rest[j] == '\\' {
				j++
				continue
			}
			if rest[j] == '"' {
				end = j
				break
			}
		}
		if end < 0 {
			continue
		}
		var s string
		if err := json.Unmarshal(rest[:end+1], &s); err != nil || !utf8.ValidString(s) {
			continue
		}
		s = strings.TrimSpace(strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
				return -1
			}
			return r
		}, s))
		return clipRunes(s, recoverRunes)
	}
	return ""
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
			return "", errors.New("is not a string")
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return "", errors.New("is not a boolean")
		}
		return strconv.FormatBool(b), nil
	case '{':
		return "", errors.New("must be a string, not an object")
	case '[':
		return "", errors.New("must be a string, not a list")
	default:
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", errors.New("is not a number")
		}
		return n.String(), nil
	}
}

// visible reports whether s has a letter, digit, punctuation or symbol:
// something a certificate can show. Default-ignorable characters that are
// classed as letters (the Hangul fillers, Khmer inherent vowels) draw
// nothing and do not count.
func visible(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) &&
			!unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
	}) >= 0
}

// quote quotes s for an error reason: at most 40 characters, with control
// and non-printable characters escaped.
func quote(s string) string { return strconv.QuoteToASCII(clipRunes(s, 40)) }

func clipRunes(s string, n int) string {
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

// SuccessAnswer is the body posted back for a created certificate.
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
// reason as the certificate's error_reason. It finds the certificate by
// username and course_id (and the header's key): an answer without them
// cannot be matched.
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
