package document

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sampleFields are realistic fields for a certificate.
func sampleFields(name string) Fields {
	return Fields{
		Name: name, CourseID: "course-v1:edX+DemoX+Demo_Course", CourseName: "Demonstration Course",
		Org: "edX University", OrgShort: "edX", IssuedDate: "February 2nd, 2012",
		IssuedAt: time.Date(2012, 2, 2, 10, 0, 0, 0, time.UTC),
		Grade:    "Pass", GradeText: "with Distinction", CertificateType: "Certificate of Achievement",
		AssociationText: "a course of study offered by", CertificateID: "4f3c2a1b9d8e4f7a8b6c5d4e3f2a1b0c",
		VerifyURL: "https://certificates.example.org/cert/4f3c2a1b9d8e4f7a8b6c5d4e3f2a1b0c",
	}
}

func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("CERTD_SAMPLES")
	if dir == "" {
		return
	}
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for n, name := range map[string]string{"latin": "Jane Doe", "arabic": "محمد عبد الله", "mixed1": "Ahmed أحمد", "mixed2": "محمد Smith",
		"hebrew": "שָׁלוֹם כֹּהֵן", "cjk": "王小明 山田太郎 김민준", "deva": "अंकित शर्मा", "thai": "สมชาย ใจดี", "viet": "Nguyễn Thị Minh Khai", "persian": "فاطمه پژمان"} {
		b, err := r.Render("", sampleFields(name))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		os.WriteFile(filepath.Join(dir, n+".pdf"), b, 0o644)
	}
}
