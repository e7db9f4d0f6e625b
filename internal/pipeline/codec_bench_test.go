package pipeline

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/internal/lms"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// benchJob is a typical job: an xqueue create request for a named learner.
func benchJob() (*certdv1.Job, *certdv1.JobRecord) {
	req := []byte(`{"action":"create","username":"u12345","course_id":"course-v1:edX+DemoX+Demo_Course","course_name":"Demonstration Course","name":"Ελένη Παπαδοπούλου","grade":"Pass","issued_date":"ROLLING"}`)
	now := timestamppb.New(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	job := &certdv1.Job{Id: "0123456789abcdef0123456789abcdef", Request: req,
		DownloadUuid: "00112233445566778899aabbccddeeff", VerifyUuid: "ffeeddccbbaa99887766554433221100",
		Generation: 1, AcceptedAt: now}
	rec := &certdv1.JobRecord{Id: job.Id, Source: certdv1.Source_SOURCE_XQUEUE, SubmissionId: 12345, XqueueKey: "k-0123456789",
		Username: "u12345", CourseId: "course-v1:edX+DemoX+Demo_Course", DownloadUuid: job.DownloadUuid,
		VerifyUuid: job.VerifyUuid, Request: req, Generation: 1, Attempts: 1,
		DownloadUrl: "https://certs.example.org/downloads/00112233445566778899aabbccddeeff/Certificate.pdf",
		Answer:      lms.SuccessAnswer("create", job.DownloadUuid, job.VerifyUuid, "u12345", "course-v1:edX+DemoX+Demo_Course", "https://certs.example.org/downloads/x/Certificate.pdf"),
		CreatedAt:   now, UpdatedAt: now}
	return job, rec
}

// BenchmarkJobEncode measures encoding a job and its record (each job is
// published once and its record written several times).
func BenchmarkJobEncode(b *testing.B) {
	job, rec := benchJob()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marshal(job); err != nil {
			b.Fatal(err)
		}
		if _, err := marshal(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJobDecode measures decoding a job and its record, and parsing
// the LMS request the job carries.
func BenchmarkJobDecode(b *testing.B) {
	job, rec := benchJob()
	jb, _ := marshal(job)
	rb, _ := marshal(rec)
	b.ReportAllocs()
	for b.Loop() {
		var j certdv1.Job
		var r certdv1.JobRecord
		if err := unmarshal(jb, &j); err != nil {
			b.Fatal(err)
		}
		if err := unmarshal(rb, &r); err != nil {
			b.Fatal(err)
		}
		if _, err := lms.ParseRequest(j.Request); err != nil {
			b.Fatal(err)
		}
	}
}
