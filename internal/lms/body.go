package lms

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Job is a job body as the LMS builds it. Body encodes it byte for byte as
// edx-platform does (Python's json.dumps with its defaults); the demo, the
// test environment and the tests send these bodies so that certd is always
// exercised with what it will really receive.
type Job struct {
	Action     string // create, regen or remove
	Username   string
	CourseID   string
	CourseName string
	Name       string
	// Grade is the grade text; "" is sent as null, as the LMS does for a
	// grade it could not read.
	Grade string
	// TemplatePDF is sent on every create and regen job; see TemplateName.
	TemplatePDF string
	// Optional fields, sent only when set.
	Designation, IssuedDate              string
	DeleteDownloadUUID, DeleteVerifyUUID string
	// Example is a course team's preview certificate: the LMS then puts
	// the example's uuid in Username and adds "example_certificate": true.
	Example bool
}

// TemplateName is the template_pdf the LMS puts on a job for a course:
// certificate-template-<org>-<course>.pdf, or ...-verified.pdf for an
// ID-verified learner in a verified mode. It does so whether or not the
// site has such a file. An unparseable course id gives "".
func TemplateName(courseID string, verified bool) string {
	id, err := ParseCourseID(courseID)
	if err != nil {
		return ""
	}
	name := "certificate-template-" + id.Org + "-" + id.Course
	if verified {
		name += "-verified"
	}
	return name + ".pdf"
}

// CreateJob is the create job the LMS sends for a learner who passed:
// template_pdf set from the course id, verified or not.
func CreateJob(username, courseID, courseName, name, grade string, verified bool) Job {
	return Job{Action: "create", Username: username, CourseID: courseID, CourseName: courseName,
		Name: name, Grade: grade, TemplatePDF: TemplateName(courseID, verified)}
}

// Body encodes the job in the LMS's key order with Python's json.dumps
// separators (", " and ": ") and ASCII escapes (\uXXXX, surrogate pairs
// above the BMP).
func (j Job) Body() []byte {
	var b pyObject
	switch {
	case j.Example:
		// The LMS's example certificate: action, course_id, name,
		// template_pdf, username (the example's uuid), example_certificate.
		b.str("action", j.Action)
		b.str("course_id", j.CourseID)
		b.str("name", j.Name)
		b.str("template_pdf", j.TemplatePDF)
		b.str("username", j.Username)
		b.raw("example_certificate", "true")
	case j.Action == "remove":
		b.str("action", j.Action)
		b.str("username", j.Username)
		b.str("course_id", j.CourseID)
	default:
		b.str("action", j.Action)
		b.str("username", j.Username)
		b.str("course_id", j.CourseID)
		b.str("course_name", j.CourseName)
		b.str("name", j.Name)
		if j.Grade == "" {
			b.raw("grade", "null")
		} else {
			b.str("grade", j.Grade)
		}
		b.str("template_pdf", j.TemplatePDF)
	}
	for _, kv := range [][2]string{
		{"designation", j.Designation}, {"issued_date", j.IssuedDate},
		{"delete_download_uuid", j.DeleteDownloadUUID}, {"delete_verify_uuid", j.DeleteVerifyUUID},
	} {
		if kv[1] != "" {
			b.str(kv[0], kv[1])
		}
	}
	return b.bytes()
}

// pyObject writes a JSON object as Python's json.dumps does.
type pyObject struct{ b strings.Builder }

func (o *pyObject) raw(key, value string) {
	if o.b.Len() == 0 {
		o.b.WriteByte('{')
	} else {
		o.b.WriteString(", ")
	}
	PyString(&o.b, key)
	o.b.WriteString(": ")
	o.b.WriteString(value)
}

func (o *pyObject) str(key, value string) {
	var v strings.Builder
	PyString(&v, value)
	o.raw(key, v.String())
}

func (o *pyObject) bytes() []byte {
	if o.b.Len() == 0 {
		return []byte("{}")
	}
	return []byte(o.b.String() + "}")
}

// PyString writes s as a JSON string the way Python's json.dumps does with
// ensure_ascii (its default): printable ASCII as is except `"` and `\`,
// the usual short escapes, and every other character (DEL and non-ASCII
// included) as lowercase \uXXXX, with surrogate pairs above U+FFFF.
// Invalid UTF-8 is written as U+FFFD.
func PyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			writeU(b, 0xd800+(r>>10))
			writeU(b, 0xdc00+(r&0x3ff))
		case r == utf8.RuneError:
			writeU(b, 0xfffd)
		default:
			writeU(b, r)
		}
	}
	b.WriteByte('"')
}

func writeU(b *strings.Builder, r rune) {
	h := strconv.FormatInt(int64(r), 16)
	b.WriteString(`\u`)
	b.WriteString(strings.Repeat("0", 4-len(h)))
	b.WriteString(h)
}
