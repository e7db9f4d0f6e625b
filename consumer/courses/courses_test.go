package courses

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadFixture(t *testing.T) *Catalog {
	t.Helper()
	site, err := LoadSite("testdata/site.yml")
	if err != nil {
		t.Fatalf("LoadSite: %v", err)
	}
	c, err := Load("testdata/cert-data.yml", site, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func resolve(t *testing.T, c *Catalog, id string) Settings {
	t.Helper()
	s, err := c.Resolve(id)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", id, err)
	}
	return s
}

func TestResolveFixture(t *testing.T) {
	c := loadFixture(t)
	for _, tc := range []struct {
		id   string
		want Settings
	}{
		{"BerkeleyX/CS169.1x/2012_Fall", Settings{
			LongOrg: "University of California, Berkeley", LongCourse: "CS 169.1x: Software as a Service",
			IssuedDate: "Jan. 1st, 2013", Template: "1", Version: "1",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: true}},
		// The same course asked for by its new-style id.
		{"course-v1:BerkeleyX+CS169.1x+2012_Fall", Settings{
			LongOrg: "University of California, Berkeley", LongCourse: "CS 169.1x: Software as a Service",
			IssuedDate: "Jan. 1st, 2013", Template: "1", Version: "1",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: true}},
		// Merge key from the anchored defaults; TEMPLATEFILE: False means unset; long org from CERT_ORGS_LONG.
		{"course-v1:MITx+6.00x+1T2015", Settings{
			LongOrg: "Massachusetts Institute of Technology", LongCourse: "Introduction to Computer Science and Programming Using Python",
			IssuedDate: "ROLLING", Template: "4_programmatic", Version: "4_programmatic",
			CertsAreCalled: "Statement of Accomplishment", CertsAreCalledPlural: "Statements of Accomplishment",
			AssociationText: "an online learning initiative of", Verify: true}},
		// Old-form entry, new-form job; organisation settings; VERIFY as the string "False".
		{"course-v1:HarvardX+PH207x+2012_Fall", Settings{
			LongOrg: "Harvard University", LongCourse: "Health in Numbers", IssuedDate: "2013-05-06",
			Template: "certificate-template-HarvardX-PH207x.pdf", TemplateFile: "certificate-template-HarvardX-PH207x.pdf",
			CertsAreCalled: "Certificate of Achievement", CertsAreCalledPlural: "Certificates of Achievement",
			AssociationText: "a course offered by", Verify: false}},
		{"Test/CME/Renderer", Settings{
			LongOrg: "Example Learning", LongCourse: "(╯°□°）╯︵ ┻━┻", IssuedDate: "ROLLING",
			Template: "blank.pdf", Version: "stanford_cme", TemplateFile: "blank.pdf",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: false}},
		// Both forms listed: each id finds its own entry.
		{"edX/DemoX/Demo_Course", Settings{
			LongOrg: "edX", LongCourse: "Demo (old entry)", IssuedDate: "ROLLING",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: true}},
		{"course-v1:edX+DemoX+Demo_Course", Settings{
			LongOrg: "edX", LongCourse: "Demonstration Course", IssuedDate: "May 6th, 2013",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: true}},
		{"course-v1:DupX+D1+2020", Settings{
			LongOrg: "Example Learning", LongCourse: "Second title", IssuedDate: "ROLLING",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: true}},
		// Not in the file: organisation, then site defaults.
		{"course-v1:HarvardX+New101+2026", Settings{
			LongOrg: "Harvard University", IssuedDate: "ROLLING",
			CertsAreCalled: "Certificate of Achievement", CertsAreCalledPlural: "Certificates of Achievement",
			AssociationText: "a course offered by", Verify: true}},
		{"course-v1:UnknownX+X1+2026", Settings{
			LongOrg: "Example Learning", IssuedDate: "ROLLING",
			CertsAreCalled: "Certificate", CertsAreCalledPlural: "Certificates", AssociationText: "a course offered by", Verify: true}},
	} {
		got := resolve(t, c, tc.id)
		if !equalSettings(got, tc.want) {
			t.Errorf("Resolve(%q) =\n %+v\nwant\n %+v", tc.id, got, tc.want)
		}
	}
}

func equalSettings(a, b Settings) bool {
	a.Interstitial, b.Interstitial = nil, nil
	return a.LongOrg == b.LongOrg && a.LongCourse == b.LongCourse && a.IssuedDate == b.IssuedDate &&
		a.Template == b.Template && a.Version == b.Version && a.TemplateFile == b.TemplateFile &&
		a.CertsAreCalled == b.CertsAreCalled && a.CertsAreCalledPlural == b.CertsAreCalledPlural &&
		a.AssociationText == b.AssociationText && a.Verify == b.Verify
}

func TestGradeText(t *testing.T) {
	c := loadFixture(t)
	berkeley := resolve(t, c, "BerkeleyX/CS169.1x/2012_Fall")
	for grade, want := range map[string]string{
		"Pass":          "This student has passed.",
		"distinction":   "This student has passed with distinction.",
		" DISTINCTION ": "This student has passed with distinction.",
		"Honors":        "This student has passed.", // unknown grade: the Pass text
		"":              "This student has passed.",
	} {
		if got := berkeley.GradeText(grade); got != want {
			t.Errorf("GradeText(%q) = %q, want %q", grade, got, want)
		}
	}
	es := resolve(t, c, "translation/test/course")
	if got := es.GradeText("distinctión"); got != "Con distinción." {
		t.Errorf("unicode grade: %q", got)
	}
	// Interstitial merged in from the anchored defaults.
	if got := resolve(t, c, "course-v1:MITx+6.00x+1T2015").GradeText("Pass"); got != "This person passed the course." {
		t.Errorf("merged interstitial: %q", got)
	}
	if got := resolve(t, c, "course-v1:UnknownX+X1+2026").GradeText("Pass"); got != "" {
		t.Errorf("no interstitial at all: %q, want empty", got)
	}
}

func TestDefaultsOnly(t *testing.T) {
	c, err := Load("", Site{})
	if err != nil {
		t.Fatal(err)
	}
	s := resolve(t, c, "course-v1:edX+DemoX+Demo_Course")
	want := Settings{LongOrg: "edX", IssuedDate: "ROLLING", CertsAreCalled: "Certificate",
		CertsAreCalledPlural: "Certificates", AssociationText: "a course of study offered by", Verify: true}
	if !equalSettings(s, want) {
		t.Errorf("defaults = %+v, want %+v", s, want)
	}
	if _, err := c.Resolve("not a course"); !errors.Is(err, ErrInvalidCourseID) {
		t.Errorf("Resolve(garbage) = %v, want permanent ErrInvalidCourseID", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, body := range map[string]string{
		"bad-verify.yml":  "edX/A/B:\n  VERIFY: maybe\n",
		"bad-yaml.yml":    "edX/A/B:\n  LONG_ORG: [unclosed\n",
		"top-list.yml":    "- a\n- b\n",
		"bad-interst.yml": "edX/A/B:\n  interstitial: just text\n",
		"bad-merge.yml":   "edX/A/B:\n  <<: 5\n",
	} {
		p := write(name, body)
		if _, err := Load(p, Site{}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: Load = %v, want an error naming the file", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.yml"), Site{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// An empty file and a free-text date are accepted; the latter with a warning.
	var logs bytes.Buffer
	if _, err := Load(write("empty.yml", "---\n"), Site{}); err != nil {
		t.Errorf("empty file: %v", err)
	}
	if _, err := Load("testdata/cert-data.yml", Site{}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "Fall 2012") {
		t.Errorf("no warning about the free-text ISSUED_DATE; logs:\n%s", logs.String())
	}
	if _, err := ParseSite([]byte("VERIFY: perhaps\n")); err == nil {
		t.Errorf("site with a bad VERIFY accepted")
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("a" + string(rune('0'+i%10)) + string(rune('a'+i)) + ": &a" + string(rune('a'+i)) + " [")
		prev := "a0"
		if i > 1 {
			prev = "a" + string(rune('a'+i-1))
		}
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
	}
	p := filepath.Join(t.TempDir(), "bomb.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, Site{}); err == nil {
		t.Errorf("an alias bomb was expanded without error")
	}
}

func TestParseCourseID(t *testing.T) {
	for in, want := range map[string]CourseID{
		"course-v1:edX+DemoX+Demo_Course":              {Org: "edX", Course: "DemoX", Run: "Demo_Course"},
		"edX/DemoX/Demo_Course":                        {Org: "edX", Course: "DemoX", Run: "Demo_Course"},
		"BerkeleyX/CS169.1x/2012_Fall":                 {Org: "BerkeleyX", Course: "CS169.1x", Run: "2012_Fall"},
		" course-v1:MITx+6.00x+1T2015 ":                {Org: "MITx", Course: "6.00x", Run: "1T2015"},
		"course-v1:edX+DemoX+Demo_Course+branch@draft": {Org: "edX", Course: "DemoX", Run: "Demo_Course"},
		"course-v1:Universität+Kurs~1+2024-Frühjahr":   {Org: "Universität", Course: "Kurs~1", Run: "2024-Frühjahr"},
		"course-v1:edX+DemoX+run:with:colons":          {Org: "edX", Course: "DemoX", Run: "run:with:colons"},
	} {
		got, err := ParseCourseID(in)
		if err != nil || got != want {
			t.Errorf("ParseCourseID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	id, _ := ParseCourseID("edX/DemoX/Demo_Course")
	if id.String() != "course-v1:edX+DemoX+Demo_Course" || id.Slashed() != "edX/DemoX/Demo_Course" {
		t.Errorf("String/Slashed = %q, %q", id.String(), id.Slashed())
	}
	for _, bad := range []string{"", "garbage", "course-v1:edX+DemoX", "a/b", "a/b/c/d", "edX//Demo",
		"course-v1:edX+Demo X+run", "../../etc/passwd", "course-v1:a+b+c+d", "<script>/x/y", "edX/DemoX/Demo\x00"} {
		if _, err := ParseCourseID(bad); !errors.Is(err, ErrInvalidCourseID) {
			t.Errorf("ParseCourseID(%q) = %v, want permanent ErrInvalidCourseID", bad, err)
		}
	}
}

func TestFormatDate(t *testing.T) {
	want := map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 10: "10th", 11: "11th", 12: "12th", 13: "13th",
		14: "14th", 20: "20th", 21: "21st", 22: "22nd", 23: "23rd", 24: "24th", 30: "30th", 31: "31st"}
	for d, suffix := range want {
		got := FormatDate(time.Date(2012, time.January, d, 0, 0, 0, 0, time.UTC))
		if w := "January " + suffix + ", 2012"; got != w {
			t.Errorf("day %d: %q, want %q", d, got, w)
		}
	}
	if got := FormatDate(time.Date(2012, 2, 2, 23, 0, 0, 0, time.UTC)); got != "February 2nd, 2012" {
		t.Errorf("got %q", got)
	}
}

func TestIssueDate(t *testing.T) {
	now := time.Date(2026, 3, 14, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)) // 2026-03-15 in UTC
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		job, fixed string
		want       time.Time
		text       string
	}{
		{"2012-02-02", "May 6th, 2013", day(2012, 2, 2), "February 2nd, 2012"}, // the job wins
		{"2012-02-02T10:00:00Z", "", day(2012, 2, 2), "February 2nd, 2012"},    // time part ignored
		{"", "ROLLING", day(2026, 3, 15), "March 15th, 2026"},                  // now, as a UTC date
		{"", "rolling", day(2026, 3, 15), "March 15th, 2026"},                  //
		{"", "", day(2026, 3, 15), "March 15th, 2026"},                         //
		{"", "2013-05-06", day(2013, 5, 6), "May 6th, 2013"},                   // ISO
		{"", "May 6th, 2013", day(2013, 5, 6), "May 6th, 2013"},                // old free text
		{"", "Jan. 1st, 1970", day(1970, 1, 1), "January 1st, 1970"},           //
		{"", "Sept. 23rd, 2013", day(2013, 9, 23), "September 23rd, 2013"},     //
		{"", "february 2 2012", day(2012, 2, 2), "February 2nd, 2012"},         //
		{"", "22 November 2014", day(2014, 11, 22), "November 22nd, 2014"},     //
		{"", "June 2014", day(2014, 6, 1), "June 2014"},                        // month only
	} {
		s := Settings{IssuedDate: tc.fixed}
		got, err := IssueDate(tc.job, s, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("IssueDate(%q, %q) = %v, %v; want %v", tc.job, tc.fixed, got, err, tc.want)
		}
		text, err := DateText(tc.job, s, now)
		if err != nil || text != tc.text {
			t.Errorf("DateText(%q, %q) = %q, %v; want %q", tc.job, tc.fixed, text, err, tc.text)
		}
	}
	for _, job := range []string{"02/02/2012", "2012-13-01", "2012-02-30", "yesterday", "2012-2-2"} {
		if _, err := IssueDate(job, Settings{}, now); !errors.Is(err, ErrInvalidDate) {
			t.Errorf("IssueDate(job %q) = %v, want permanent ErrInvalidDate", job, err)
		}
		if _, err := DateText(job, Settings{}, now); !errors.Is(err, ErrInvalidDate) {
			t.Errorf("DateText(job %q) = %v, want ErrInvalidDate", job, err)
		}
	}
	// Free text that is not a date: DateText prints it as written, IssueDate cannot.
	if _, err := IssueDate("", Settings{IssuedDate: "Fall 2012"}, now); !errors.Is(err, ErrInvalidDate) {
		t.Errorf("IssueDate(Fall 2012) = %v, want ErrInvalidDate", err)
	}
	if text, err := DateText("", Settings{IssuedDate: "Fall 2012"}, now); err != nil || text != "Fall 2012" {
		t.Errorf("DateText(Fall 2012) = %q, %v", text, err)
	}
}

// HAN_STYLE comes from the course, else its organisation, else the site;
// a value that is not a Han style is refused when the file is loaded.
func TestHanStyle(t *testing.T) {
	site, err := ParseSite([]byte("HAN_STYLE: zh-Hant\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cert-data.yml")
	os.WriteFile(p, []byte("course-v1:UTokyo+JP1+2026:\n  HAN_STYLE: ja\n"), 0o600)
	c, err := Load(p, site)
	if err != nil {
		t.Fatal(err)
	}
	if s := resolve(t, c, "course-v1:UTokyo+JP1+2026"); s.HanStyle != "ja" {
		t.Errorf("course HAN_STYLE: %q, want ja", s.HanStyle)
	}
	if s := resolve(t, c, "course-v1:edX+DemoX+Demo_Course"); s.HanStyle != "zh-Hant" {
		t.Errorf("site HAN_STYLE: %q, want zh-Hant", s.HanStyle)
	}
	os.WriteFile(p, []byte("course-v1:A+B+C:\n  HAN_STYLE: chinese\n"), 0o600)
	if _, err := Load(p, Site{}); err == nil || !strings.Contains(err.Error(), "HAN_STYLE") {
		t.Errorf("bad HAN_STYLE: %v", err)
	}
}
