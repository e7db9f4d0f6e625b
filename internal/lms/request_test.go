package lms

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRequestAcceptsWhatTheLMSSends(t *testing.T) {
	body := `{"action": "create", "username": "jdoe", "course_id": "course-v1:edX+DemoX+Demo_Course",
	 "course_name": "Demonstration Course", "name": "Jane Doe", "grade": 0.87, "issued_date": "2012-02-02",
	 "designation": "PhD", "template_pdf": "certificate-template-edX-DemoX.pdf", "example_certificate": true,
	 "extra": {"ignored": [1, 2]}}`
	r, err := ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Action: "create", Username: "jdoe", CourseID: "course-v1:edX+DemoX+Demo_Course",
		CourseName: "Demonstration Course", Name: "Jane Doe", Grade: "0.87", IssuedDate: "2012-02-02",
		Designation: "PhD", TemplatePDF: "certificate-template-edX-DemoX.pdf", ExampleCertificate: true}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if r.Verified() {
		t.Error("a template without 'verified' asks for a verified certificate")
	}
}

// TestParseRequestAcceptsBuiltBodies feeds the parser the bodies the LMS
// builds, for names in many scripts (bidi marks and joiners included).
func TestParseRequestAcceptsBuiltBodies(t *testing.T) {
	for _, name := range []string{"Jane Doe", "Zoë Ångström", "王小明", "أحمد\u200fعبد الله", "مهدی\u200cزاده", "प्रिया शर्मा",
		`<script>alert("x")</script> O'Brien & Co`, "🎓 Emoji Learner"} {
		for _, verified := range []bool{false, true} {
			j := CreateJob("u1", "course-v1:edX+DemoX+Demo_Course", "Demo", name, "Pass", verified)
			r, err := ParseRequest(j.Body())
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			if r.Name != name || r.Verified() != verified || r.TemplatePDF != j.TemplatePDF {
				t.Errorf("%q verified=%v: got %+v", name, verified, r)
			}
		}
	}
}

// hostile is one body certd must refuse with a specific reason, and the
// identity the error answer must carry so the LMS can match it.
type hostile struct {
	name, body, reason, user, course string
}

func hostileBodies() []hostile {
	long := strings.Repeat("x", 20000)
	cid := "course-v1:edX+DemoX+Demo_Course"
	ok := func(extra string) string {
		return `{"action": "create", "username": "jdoe", "course_id": "` + cid + `", "name": "Jane Doe"` + extra + `}`
	}
	withName := func(name string) string {
		b, _ := json.Marshal(name)
		return `{"action": "create", "username": "jdoe", "course_id": "` + cid + `", "name": ` + string(b) + `}`
	}
	return []hostile{
		{"empty", ``, "not a JSON object: the body is empty", "", ""},
		{"null", `null`, "not a JSON object: it is null", "", ""},
		{"list", `[1,2]`, "not a JSON object: it is a JSON array", "", ""},
		{"string", `"create"`, "not a JSON object: it is a JSON string", "", ""},
		{"truncated", `{"action": "create", "username": "jdoe", "course_id": "` + cid + `"`, "not a JSON object", "jdoe", cid},
		{"html", `<html><body>502 Bad Gateway</body></html>`, "not a JSON object: invalid character '<'", "", ""},
		{"python repr", `{'action': 'create', 'username': 'jdoe'}`, "not a JSON object", "", ""},
		{"not JSON, identity recoverable", `{"username": "jdoe", "course_id": "` + cid + `", "name": Jane}`, "not a JSON object", "jdoe", cid},
		{"two objects", ok("") + ok(""), "data after the object", "jdoe", cid},
		{"too big", ok(`, "pad": "` + strings.Repeat("a", 70000) + `"`), "bytes; the limit is 65536", "jdoe", cid},
		{"missing action", `{"username": "jdoe", "course_id": "` + cid + `"}`, "missing action", "jdoe", cid},
		{"missing username", `{"action": "create", "course_id": "` + cid + `", "name": "n"}`, "missing username", "", cid},
		{"blank username", `{"action": "create", "username": "  ", "course_id": "` + cid + `", "name": "n"}`, "missing username", "  ", cid},
		{"missing course_id", `{"action": "create", "username": "jdoe", "name": "n"}`, "missing course_id", "jdoe", ""},
		{"missing name", `{"action": "create", "username": "jdoe", "course_id": "` + cid + `"}`, "missing name", "jdoe", cid},
		{"blank name", withName("   "), "missing name", "jdoe", cid},
		{"unknown action", `{"action": "delete", "username": "jdoe", "course_id": "` + cid + `"}`, `unknown action "delete": want create, regen or remove`, "jdoe", cid},
		{"markup action", `{"action": "<b>x</b>", "username": "jdoe", "course_id": "` + cid + `"}`, `unknown action "<b>x</b>"`, "jdoe", cid},
		{"bad course id", `{"action": "create", "username": "jdoe", "course_id": "not a course", "name": "n"}`, `course_id "not a course" is not a course id`, "jdoe", "not a course"},
		{"course id path", `{"action": "create", "username": "jdoe", "course_id": "../../etc/passwd", "name": "n"}`, "is not a course id", "jdoe", "../../etc/passwd"},
		{"template dot-dot", ok(`, "template_pdf": "../../etc/passwd"`), `template_pdf "../../etc/passwd" is not a plain file name`, "jdoe", cid},
		{"template absolute", ok(`, "template_pdf": "/etc/passwd"`), "not a plain file name", "jdoe", cid},
		{"template backslash", ok(`, "template_pdf": "..\\..\\boot.ini"`), "not a plain file name", "jdoe", cid},
		{"template NUL", ok(`, "template_pdf": "a.pdf\u0000.yaml"`), "not a plain file name", "jdoe", cid},
		{"template dotdot name", ok(`, "template_pdf": ".."`), "not a plain file name", "jdoe", cid},
		{"template too long", ok(`, "template_pdf": "` + strings.Repeat("t", 300) + `.pdf"`), "template_pdf is 304 bytes long", "jdoe", cid},
		{"name 20000 characters", withName(long), "name is 20000 characters long; the limit is 300", "jdoe", cid},
		{"course_id 20000 characters", `{"action": "create", "username": "jdoe", "course_id": "` + long + `", "name": "n"}`, "course_id is 20000 characters long", "jdoe", strings.Repeat("x", 255) + "…"},
		{"name nothing printable", withName("\u202e\u200b \u200e"), "name has no printable characters", "jdoe", cid},
		{"name only joiners", withName("\u200d\u200c\ufeff"), "name has no printable characters", "jdoe", cid},
		{"name control character", withName("Jane\u0007Doe"), "name has a control character (U+0007) at byte 4", "jdoe", cid},
		{"name newline", withName("Jane\nDoe"), "name has a control character (U+000A)", "jdoe", cid},
		{"name C1 control", withName("Jane\u0085Doe"), "name has a control character (U+0085)", "jdoe", cid},
		{"name bidi override", withName("Jane \u202egnp.exe"), "name has a bidi override character (U+202E)", "jdoe", cid},
		{"name bidi isolate", withName("\u2067Jane\u2069"), "name has a bidi override character (U+2067)", "jdoe", cid},
		{"name of Hangul fillers", withName("\u3164 \u115f\u1160\uffa0"), "name has no printable characters", "jdoe", cid},
		{"name of Khmer inherent vowels", withName("\u17b4\u17b5"), "name has no printable characters", "jdoe", cid},
		{"name private use", withName("Jane \ue000"), "name has a private-use character (U+E000) at byte 5", "jdoe", cid},
		{"name supplementary private use", withName("Jane \U000F0000"), "name has a private-use character (U+F0000)", "jdoe", cid},
		{"name noncharacter", withName("Jane \uffff"), "name has a noncharacter (U+FFFF)", "jdoe", cid},
		{"name replacement character", withName("Jos\ufffd Doe"), "name has a replacement character (U+FFFD) at byte 3", "jdoe", cid},
		{"designation bidi", ok(`, "designation": "PhD\u202d"`), "designation has a bidi override character (U+202D)", "jdoe", cid},
		{"username control", `{"action": "create", "username": "jd\u0000oe", "course_id": "` + cid + `", "name": "n"}`, "username has a control character (U+0000)", "jd\x00oe", cid},
		{"username object", `{"action": "create", "username": {"a": 1}, "course_id": "` + cid + `", "name": "n"}`, "bad field: username must be a string, not an object", "", cid},
		{"name list", `{"action": "create", "username": "jdoe", "course_id": "` + cid + `", "name": ["Jane"]}`, "bad field: name must be a string, not a list", "jdoe", cid},
		{"invalid UTF-8", "{\"action\": \"create\", \"username\": \"jdoe\", \"course_id\": \"" + cid + "\", \"name\": \"\xff\xfe\"}", "name is not valid UTF-8", "jdoe", cid},
		{"regen uuid path", `{"action": "regen", "username": "jdoe", "course_id": "` + cid + `", "name": "n", "delete_download_uuid": "../../etc"}`, "delete_download_uuid is not 32 lowercase hex", "jdoe", cid},
		{"remove uuid upper case", `{"action": "remove", "username": "jdoe", "course_id": "` + cid + `", "delete_verify_uuid": "ABCDEF0123456789ABCDEF0123456789"}`, "delete_verify_uuid is not 32 lowercase hex", "jdoe", cid},
	}
}

func TestParseRequestRefusesHostileBodiesWithAClearReason(t *testing.T) {
	cases := hostileBodies()
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(c.body))
			if err == nil || !IsBadRequest(err) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err %v, want a bad request mentioning %q", err, c.reason)
			}
			if len(err.Error()) > 300 {
				t.Errorf("reason is %d bytes; the LMS keeps a short error_reason", len(err.Error()))
			}
			if r.Username != c.user || r.CourseID != c.course {
				t.Errorf("identity for the answer: %q %q, want %q %q", r.Username, r.CourseID, c.user, c.course)
			}
			// The error answer is JSON the LMS can read and match.
			var m map[string]string
			if err := json.Unmarshal(ErrorAnswer(r.Username, r.CourseID, err.Error()), &m); err != nil {
				t.Fatal(err)
			}
			if m["error_reason"] != err.Error() || m["username"] != r.Username || m["course_id"] != r.CourseID {
				t.Errorf("answer %v", m)
			}
		})
	}
}

func TestRecoverIdentityIsBounded(t *testing.T) {
	cid := "course-v1:edX+DemoX+Demo_Course"
	for _, c := range []struct{ body, user, course string }{
		{`{"username": "jdoe", "course_id": "` + cid + `", oops}`, "jdoe", cid},
		{`username=jdoe&course_id=x`, "", ""},
		{`{"username" : "Zo\u00eb", "course_id":"` + cid + `"`, "Zoë", cid},
		{`{"username": 12, "username": "second"}`, "second", ""},
		{`{"username": "a\"b\\c"}`, `a"b\c`, ""},
		{`{"username": "unterminated`, "", ""},
		{`{"username": "` + strings.Repeat("u", 1000) + `"}`, strings.Repeat("u", 255) + "…", ""},
		{`{"username": "\u202ejdoe\u0007"}`, "jdoe", ""},
		// Beyond the first 64 KiB nothing is read.
		{strings.Repeat(" ", 64<<10) + `{"username": "late"}`, "", ""},
	} {
		u, course := RecoverIdentity([]byte(c.body))
		if u != c.user || course != c.course {
			t.Errorf("%.50q: got %q %q, want %q %q", c.body, u, course, c.user, c.course)
		}
	}
}

func TestTemplateNames(t *testing.T) {
	for _, c := range []struct {
		id       string
		verified bool
		want     string
	}{
		{"course-v1:edX+DemoX+Demo_Course", false, "certificate-template-edX-DemoX.pdf"},
		{"course-v1:edX+DemoX+Demo_Course", true, "certificate-template-edX-DemoX-verified.pdf"},
		{"HarvardX/PH207x/2012_Fall", false, "certificate-template-HarvardX-PH207x.pdf"},
		{"not a course", false, ""},
	} {
		if got := TemplateName(c.id, c.verified); got != c.want {
			t.Errorf("TemplateName(%q, %v) = %q, want %q", c.id, c.verified, got, c.want)
		}
		if c.want != "" && IsVerifiedTemplate(c.want) != c.verified {
			t.Errorf("IsVerifiedTemplate(%q) != %v", c.want, c.verified)
		}
	}
}

// TestBodiesAreEncodedAsPythonDoes compares with bytes json.dumps gives
// for the same dict (Python 3, default arguments).
func TestBodiesAreEncodedAsPythonDoes(t *testing.T) {
	j := CreateJob("zoe", "course-v1:edX+DemoX+Demo_Course", "Démo", "Zoë 王 🎓 \"Q\" <b>&\x7f", "Pass", true)
	want := `{"action": "create", "username": "zoe", "course_id": "course-v1:edX+DemoX+Demo_Course", ` +
		`"course_name": "D\u00e9mo", "name": "Zo\u00eb \u738b \ud83c\udf93 \"Q\" <b>&\u007f", "grade": "Pass", ` +
		`"template_pdf": "certificate-template-edX-DemoX-verified.pdf"}`
	if got := string(j.Body()); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	j.Grade = ""
	if !strings.Contains(string(j.Body()), `"grade": null, `) {
		t.Errorf("an empty grade is not null: %s", j.Body())
	}
	ex := Job{Action: "create", CourseID: "course-v1:a+b+c", Name: "Example", TemplatePDF: "t.pdf", Username: "0123", Example: true}
	if got, want := string(ex.Body()), `{"action": "create", "course_id": "course-v1:a+b+c", "name": "Example", "template_pdf": "t.pdf", "username": "0123", "example_certificate": true}`; got != want {
		t.Errorf("example: got %s\nwant %s", got, want)
	}
	rm := Job{Action: "remove", Username: "u", CourseID: "a/b/c", DeleteVerifyUUID: strings.Repeat("a", 32)}
	if got, want := string(rm.Body()), `{"action": "remove", "username": "u", "course_id": "a/b/c", "delete_verify_uuid": "`+strings.Repeat("a", 32)+`"}`; got != want {
		t.Errorf("remove: got %s\nwant %s", got, want)
	}
}

func TestAnswersMatchTheSpec(t *testing.T) {
	var m map[string]string
	if err := json.Unmarshal(ErrorAnswer("jdoe", "a/b/c", "missing name"), &m); err != nil {
		t.Fatal(err)
	}
	if m["error"] != "There was an error processing the certificate request: missing name" || m["error_reason"] != "missing name" ||
		m["username"] != "jdoe" || m["course_id"] != "a/b/c" || len(m) != 4 {
		t.Errorf("error answer %v", m)
	}
	m = nil
	if err := json.Unmarshal(SuccessAnswer("create", "d", "v", "jdoe", "a/b/c", "https://x/downloads/d/Certificate.pdf"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 6 || m["download_uuid"] != "d" || m["verify_uuid"] != "v" || m["url"] != "https://x/downloads/d/Certificate.pdf" {
		t.Errorf("success answer %v", m)
	}
}

func TestUUIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		u := NewUUID()
		if !IsUUID(u) || seen[u] {
			t.Fatalf("bad or repeated uuid %q", u)
		}
		seen[u] = true
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 32), strings.Repeat("A", 32), "../" + strings.Repeat("a", 29)} {
		if IsUUID(bad) {
			t.Errorf("IsUUID(%q) = true", bad)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, h := range hostileBodies() {
		if len(h.body) < 1000 {
			f.Add([]byte(h.body))
		}
	}
	f.Add(CreateJob("u", "course-v1:a+b+c", "C", "Zoë", "Pass", true).Body())
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			if !IsBadRequest(err) {
				t.Fatalf("error %v is not a bad request", err)
			}
			if len(r.Username) > 4*recoverRunes+3 || len(r.CourseID) > 4*recoverRunes+3 {
				t.Fatalf("identity not capped: %d, %d bytes", len(r.Username), len(r.CourseID))
			}
			return
		}
		if !IsAction(r.Action) || r.Username == "" {
			t.Fatalf("accepted an invalid request %+v", r)
		}
		if _, err := ParseCourseID(r.CourseID); err != nil {
			t.Fatalf("accepted a bad course id %q", r.CourseID)
		}
		if CheckTemplateName(r.TemplatePDF) != nil && r.TemplatePDF != "" {
			t.Fatalf("accepted a path-like template_pdf %q", r.TemplatePDF)
		}
		if r.Action != "remove" && (!visible(r.Name) || checkText("name", r.Name) != nil) {
			t.Fatalf("accepted an unprintable name %q", r.Name)
		}
	})
}
