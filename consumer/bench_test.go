package consumer_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/testenv"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRenderAndSign is the CPU cost of one certificate: draw the PDF
// and sign it, for names in three scripts. Every iteration has its own
// certificate id and verification URL, as in production. It reports
// cpu-ms/cert (process CPU time, so the GC is included) next to ns/op.
func BenchmarkRenderAndSign(b *testing.B) {
	r := testenv.Renderer(b)
	s := testenv.Signer(b)
	for _, c := range []struct{ script, name string }{
		{"Latin", "Zoë Ångström-Łukasiewicz"},
		{"CJK", "王小明 山田太郎"},
		{"Arabic", "أحمد عبد الله"},
	} {
		b.Run(c.script, func(b *testing.B) {
			f := document.Fields{
				Name: c.name, CourseID: "course-v1:edX+DemoX+Demo_Course", CourseName: "Demonstration Course",
				Org: "edX", OrgShort: "edX", IssuedDate: "February 2nd, 2012", IssuedAt: time.Date(2012, 2, 2, 0, 0, 0, 0, time.UTC),
				Grade: "Pass", CertificateType: "Certificate", AssociationText: "a course of study offered by",
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime(b)
			for i := 0; i < b.N; i++ {
				f.CertificateID = fmt.Sprintf("%032x", i)
				f.VerifyURL = "https://verify.example.org/cert/" + f.CertificateID
				pdf, err := r.Render("", f)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Sign(pdf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/cert")
		})
	}
}

// BenchmarkCertificateCredential is the CPU a credential adds to one
// certificate: the whole create job through Handler (render, OpenPGP
// signature, pages, file store) without and with the Open Badges
// credential (status index reserved in the embedded NATS server's bucket,
// build, canonicalize, sign, store). The embedded server runs in this
// process, so its share of the reservation is counted too. Compare the
// cpu-ms/cert of the two.
func BenchmarkCertificateCredential(b *testing.B) {
	f := newCredFixture(b)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		h    *consumer.Handler
	}{
		{"without", testenv.NewHandler(b, f.env, f.env.Store)},
		{"with", f.h},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := lms.Job{Action: "create", Username: "ada", CourseID: testenv.Course, CourseName: "Demonstration Course", Name: "Ada Lovelace", Grade: "Pass"}.Body()
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime(b)
			for i := 0; i < b.N; i++ {
				res, err := c.h.Handle(ctx, jobFor(body))
				if err != nil || !res.Ok {
					b.Fatalf("%v %q", err, res.GetErrorReason())
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/cert")
		})
	}
}
