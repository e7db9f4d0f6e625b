package testenv

import (
	"strings"

	"github.com/certd-dev/certd/internal/lms"
)

// Course is the course of the tests' LMS jobs.
const Course = "course-v1:edX+DemoX+Demo_Course"

// LMSJob is the body the LMS sends for a learner who passed Course, byte
// for byte as edx-platform builds it (template_pdf included: the LMS sends
// one on every job, whether or not the site has the file).
func LMSJob(username, name string) []byte {
	return lms.CreateJob(username, Course, "Demonstration Course", name, "Pass", false).Body()
}

// VerifiedLMSJob is LMSJob for an ID-verified learner
// (template_pdf ...-verified.pdf).
func VerifiedLMSJob(username, name string) []byte {
	return lms.CreateJob(username, Course, "Demonstration Course", name, "Pass", true).Body()
}

// Hostile is a job body an attacker or a broken sender might submit, what
// its error_reason must mention, and the identity its answer must carry.
type Hostile struct {
	Name, Body, Reason string
	Username, CourseID string
}

// HostileBodies are bodies that must each be answered once, with an
// error, and store nothing.
func HostileBodies() []Hostile {
	withName := func(user, name string) string {
		j := lms.CreateJob(user, Course, "Demonstration Course", name, "Pass", false)
		return string(j.Body())
	}
	with := func(user string, kv ...string) string {
		j := string(lms.CreateJob(user, Course, "Demonstration Course", "Jane Doe", "Pass", false).Body())
		j = strings.TrimSuffix(j, "}")
		for i := 0; i+1 < len(kv); i += 2 {
			j += `, "` + kv[i] + `": ` + kv[i+1]
		}
		return j + "}"
	}
	return []Hostile{
		{"not JSON", `{"username": "h01", "course_id": "` + Course + `", "name": Jane}`, "not a JSON object", "h01", Course},
		{"HTML", `<html>502 Bad Gateway</html>`, "not a JSON object", "", ""},
		{"JSON list", `["create", "h02"]`, "not a JSON object: it is a JSON array", "", ""},
		{"missing name", `{"action": "create", "username": "h03", "course_id": "` + Course + `"}`, "missing name", "h03", Course},
		{"missing action", `{"username": "h04", "course_id": "` + Course + `", "name": "N"}`, "missing action", "h04", Course},
		{"unknown action", `{"action": "destroy", "username": "h05", "course_id": "` + Course + `"}`, `unknown action "destroy"`, "h05", Course},
		{"template path", with("h06", "template_pdf", `"../../../etc/passwd"`), "not a plain file name", "h06", Course},
		{"template absolute", with("h07", "template_pdf", `"/etc/passwd"`), "not a plain file name", "h07", Course},
		{"script name", withName("h08", "<script>alert(1)</script>\u202e"), "bidi override", "h08", Course},
		{"20,000 characters", withName("h09", strings.Repeat("W", 20000)), "name is 20000 characters long", "h09", Course},
		{"control character", withName("h10", "Jane\x07Doe"), "control character (U+0007)", "h10", Course},
		{"bidi override", withName("h11", "Jane \u202egnp.exe"), "bidi override character (U+202E)", "h11", Course},
		{"nothing printable", withName("h12", "\u200b\u200e \u2063"), "no printable characters", "h12", Course},
		{"wrong type", `{"action": "create", "username": "h13", "course_id": "` + Course + `", "name": {"first": "Jane"}}`, "name must be a string, not an object", "h13", Course},
		{"bad course id", `{"action": "create", "username": "h14", "course_id": "DemoX", "name": "N", "template_pdf": "x.pdf"}`, `course_id "DemoX" is not a course id`, "h14", "DemoX"},
		{"uuid path", `{"action": "remove", "username": "h15", "course_id": "` + Course + `", "delete_download_uuid": "../../downloads"}`, "delete_download_uuid is not 32 lowercase hex", "h15", Course},
	}
}
