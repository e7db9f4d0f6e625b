package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
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
}

func TestParseRequestRefusesWithAClearReason(t *testing.T) {
	long := strings.Repeat("x", 20000)
	cases := []struct{ body, reason string }{
		{``, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`[1,2]`, "not a JSON object"},
		{`"create"`, "not a JSON object"},
		{`{"action": "create"`, "not a JSON object"},
		{`{"username": "u", "course_id": "c"}`, "missing action"},
		{`{"action": "create", "course_id": "c", "name": "n"}`, "missing username"},
		{`{"action": "create", "username": "u", "name": "n"}`, "missing course_id"},
		{`{"action": "create", "username": "u", "course_id": "c"}`, "missing name"},
		{`{"action": "create", "username": "u", "course_id": "c", "name": "   "}`, "missing name"},
		{`{"action": "create", "username": "u", "course_id": "c", "name": "\u202e\u200b \u200e"}`, "no printable characters"},
		{`{"action": "delete", "username": "u", "course_id": "c"}`, `unknown action "delete"`},
		{`{"action": "<b>x</b>", "username": "u", "course_id": "c"}`, "unknown action"},
		{`{"action": "create", "username": {"a": 1}, "course_id": "c", "name": "n"}`, "username"},
		{`{"action": "create", "username": "u", "course_id": "c", "name": "` + long + `"}`, "name is 20000 characters long"},
		{`{"action": "create", "username": "u", "course_id": "` + long + `", "name": "n"}`, "course_id is 20000"},
		{`{"action": "regen", "username": "u", "course_id": "c", "name": "n", "delete_download_uuid": "../../etc"}`, "delete_download_uuid"},
		{`{"action": "remove", "username": "u", "course_id": "c", "delete_verify_uuid": "ABCDEF0123456789ABCDEF0123456789"}`, "delete_verify_uuid"},
		{`{"action": "create", "username": "u", "course_id": "c", "name": "` + strings.Repeat("é", 70000) + `"}`, "bytes"},
	}
	for _, c := range cases {
		_, err := ParseRequest([]byte(c.body))
		if err == nil || !IsBadRequest(err) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("body %.60q: err %v, want a bad request mentioning %q", c.body, err, c.reason)
		}
	}
}

func TestParseRequestKeepsIdentityForTheErrorAnswer(t *testing.T) {
	r, err := ParseRequest([]byte(`{"action": "frob", "username": "jdoe", "course_id": "a/b/c"}`))
	if err == nil {
		t.Fatal("want an error")
	}
	if r.Username != "jdoe" || r.CourseID != "a/b/c" {
		t.Errorf("identity lost: %+v", r)
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
	for _, s := range []string{`{"action":"create","username":"u","course_id":"c","name":"n"}`, `{}`, `[]`, `{"action":1}`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err == nil {
			if _, ok := ParseAction(r.Action); !ok || r.Username == "" || r.CourseID == "" {
				t.Fatalf("accepted an invalid request %+v", r)
			}
		} else if !IsBadRequest(err) {
			t.Fatalf("error %v is not a bad request", err)
		}
	})
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	for attempt := 1; attempt <= 20; attempt++ {
		want := min(time.Second<<(attempt-1), time.Minute)
		for i := 0; i < 50; i++ {
			d := Backoff(attempt, time.Second, time.Minute)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}
