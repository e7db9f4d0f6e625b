package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/certd-dev/certd/internal/lms"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func init() {
	commands["demo"] = command{"certd all on local storage, fed with sample certificates in many scripts", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return runAll(ctx, "demo", args, stdout, stderr, feedDemo)
	}}
}

// demoCourse is the course of the demo's jobs.
const demoCourse = "course-v1:edX+DemoX+Demo_Course"

// demoNames are learners whose names exercise every script certd supports.
// The verified ones are ID-verified learners: the LMS names their template
// "...-verified.pdf" and their certificates say "Verified Certificate".
var demoNames = []struct {
	username, name string
	verified       bool
}{
	{"jdoe", "Jane Doe", false},
	{"zoe", "Zoë Ångström-Łukasiewicz", true},
	{"nguyen", "Nguyễn Thị Minh Khai", false},
	{"eleni", "Ελένη Παπαδοπούλου", false},
	{"ivan", "Иван Петрович Сидоров", false},
	{"wang", "王小明", true},
	{"yamada", "山田 太郎", false},
	{"kim", "김민준", false},
	{"ahmed", "أحمد عبد الله", true},
	{"sara", "שָׂרָה לֵוִי", false},
	{"priya", "प्रिया शर्मा", false},
	{"somchai", "สมชาย ใจดี", false},
	{"mixed", "Ahmed أحمد Smith", false},
	{"hostile", `<script>alert("x")</script> O'Brien & Co`, false},
}

// feedDemo submits the sample jobs, waits for their answers and prints
// where the certificates are.
func feedDemo(ctx context.Context, env *allEnv) error {
	updates, err := env.p.Records.Watch(ctx, false)
	if err != nil {
		return err
	}
	ids := map[string]string{}
	for _, n := range demoNames {
		// Every job carries template_pdf, as the LMS sends it; the demo has
		// no such design, so the built-in one is used (see the job record).
		resp, err := env.svc.Submit(ctx, &certdv1.SubmitRequest{
			Action: certdv1.Action_ACTION_CREATE, Username: n.username,
			CourseId: demoCourse, CourseName: "Demonstration Course",
			Name: n.name, Grade: "Pass", TemplatePdf: lms.TemplateName(demoCourse, n.verified),
		})
		if err != nil {
			return fmt.Errorf("submit %s: %w", n.username, err)
		}
		ids[resp.Id] = n.name
	}
	fmt.Fprintf(env.stdout, "demo: submitted %d sample certificates; waiting for them\n", len(ids))
	start := time.Now()
	answered := map[string]bool{}
	for len(answered) < len(ids) {
		var rec *certdv1.JobRecord
		select {
		case <-ctx.Done():
			return nil
		case rec = <-updates:
		}
		if rec == nil {
			return fmt.Errorf("demo: watch ended")
		}
		name, ours := ids[rec.Id]
		if !ours || answered[rec.Id] || rec.State != certdv1.JobState_JOB_STATE_ANSWERED {
			continue
		}
		answered[rec.Id] = true
		if rec.AnswerOk {
			fmt.Fprintf(env.stdout, "%s\n  certificate:  %s\n  verification: %s\n", name, rec.DownloadUrl, rec.VerifyUrl)
		} else {
			fmt.Fprintf(env.stdout, "%s\n  error: %s\n", name, rec.ErrorReason)
		}
	}
	fmt.Fprintf(env.stdout, "demo: %d certificates in %s. Open the URLs above; Ctrl-C stops certd.\n", len(ids), time.Since(start).Round(time.Millisecond))
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
