package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// designYAML is a small design that shows its name, the title and
// whether the certificate is verified.
func designYAML(name string) string {
	return "name: " + name + "\ntexts:\n" +
		`  - {text: "` + name + ` {{.Title}}{{if .Verified}} (ID verified){{end}}", x: 20, y: 20, w: 250, h: 20, size: 20}` + "\n" +
		`  - {text: "{{.Name}}", x: 20, y: 60, w: 250, h: 20, size: 20}` + "\n"
}

type handlerFixture struct {
	h     *consumer.Handler
	store storage.Store
	dir   string
	logs  *syncBuffer
	ctx   context.Context
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHandler is a handler with the real renderer loading designs (YAML
// names), cert-data.yml text, a file store and a captured log.
func newHandler(t *testing.T, designs []string, certData string, site courses.Site, strict bool) *handlerFixture {
	t.Helper()
	ddir := t.TempDir()
	for _, d := range designs {
		if err := os.WriteFile(filepath.Join(ddir, strings.ReplaceAll(d, ".", "_")+".yaml"), []byte(designYAML(d)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := document.NewRenderer(document.WithDesignDir(ddir), document.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	cd := ""
	if certData != "" {
		cd = filepath.Join(t.TempDir(), "cert-data.yml")
		if err := os.WriteFile(cd, []byte(certData), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	catalog, err := courses.Load(cd, site)
	if err != nil {
		t.Fatal(err)
	}
	f := &handlerFixture{dir: t.TempDir(), logs: &syncBuffer{}, ctx: ctxFor(t)}
	f.store, err = storage.Open(f.ctx, "file://"+f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.h = consumer.NewHandler(consumer.HandlerConfig{
		Store: f.store, Renderer: r, Signer: testenv.Signer(t), Catalog: catalog,
		DownloadURL: testenv.DownloadURL, VerifyURL: testenv.VerifyURL,
		Logger:        slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StrictDesigns: strict,
	})
	return f
}

func jobFor(body []byte) *certdv1.Job {
	return &certdv1.Job{Id: "sub-" + lms.NewUUID(), Request: body, DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID()}
}

// files lists what the store holds.
func (f *handlerFixture) files(t *testing.T) []string {
	var out []string
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(f.dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDesignResolutionOrder: the course's TEMPLATEFILE, then the LMS's
// template_pdf, then the course's VERSION, then the built-in default; a
// name that is not configured falls back with a note, or fails with
// strict-designs.
func TestDesignResolutionOrder(t *testing.T) {
	lmsName := lms.TemplateName(testenv.Course, false)
	cases := []struct {
		name                  string
		configured            []string
		templateFile, version string
		strict                bool
		design, note, err     string
	}{
		{"nothing configured: LMS name falls back to default", nil, "", "", false,
			"default", `template_pdf "certificate-template-edX-DemoX.pdf" is not a configured design; using "default"`, ""},
		{"LMS name configured", []string{lmsName}, "", "", false, lmsName, "", ""},
		{"TEMPLATEFILE overrides the LMS name", []string{lmsName, "course-design"}, "course-design", "", false, "course-design", "", ""},
		{"TEMPLATEFILE missing: LMS name", []string{lmsName}, "gone.pdf", "", false,
			lmsName, `TEMPLATEFILE "gone.pdf" is not a configured design; using "certificate-template-edX-DemoX.pdf"`, ""},
		{"both missing: VERSION", []string{"v2"}, "gone.pdf", "v2", false,
			"v2", `TEMPLATEFILE "gone.pdf" and template_pdf "certificate-template-edX-DemoX.pdf" are not configured designs; using "v2"`, ""},
		{"all missing: default", nil, "gone.pdf", "4_programmatic", false,
			"default", `TEMPLATEFILE "gone.pdf" and template_pdf "certificate-template-edX-DemoX.pdf" and VERSION "4_programmatic" are not configured designs; using "default"`, ""},
		{"path-like TEMPLATEFILE is only looked up", nil, "../../etc/passwd", "", false,
			"default", `TEMPLATEFILE "../../etc/passwd" and template_pdf`, ""},
		{"strict: LMS name missing is an error", nil, "", "", true, "", "", `unknown certificate design: template_pdf "certificate-template-edX-DemoX.pdf"`},
		{"strict: TEMPLATEFILE missing is an error", []string{lmsName}, "gone.pdf", "", true, "", "", `TEMPLATEFILE "gone.pdf" of course`},
		{"strict: configured names still work", []string{"course-design"}, "course-design", "", true, "course-design", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newHandler(t, c.configured, "", courses.Site{}, c.strict)
			s := courses.Settings{TemplateFile: c.templateFile, Version: c.version}
			design, note, err := f.h.ChooseDesign(testenv.Course, lmsName, s)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || design != c.design || !strings.HasPrefix(note, c.note) || (c.note == "") != (note == "") {
				t.Errorf("got %q, %q, %v; want %q, %q", design, note, err, c.design, c.note)
			}
		})
	}
}

// TestDefaultInstallDrawsLMSJobs: on an install with no designs, jobs as
// the LMS sends them (template_pdf on every one) get certificates; the
// fallback is logged once per course and design name, and recorded.
func TestDefaultInstallDrawsLMSJobs(t *testing.T) {
	certData := "course-v1:MITx+6.00x+1T2015:\n  TEMPLATEFILE: mit.pdf\n"
	f := newHandler(t, nil, certData, courses.Site{}, false)
	jobs := [][]byte{
		testenv.LMSJob("a", "Ana Lima"), testenv.LMSJob("b", "Bo Chen"), testenv.VerifiedLMSJob("c", "Cy Diaz"),
		lms.CreateJob("d", "course-v1:MITx+6.00x+1T2015", "Intro", "Di Ek", "Pass", false).Body(),
		lms.CreateJob("e", "course-v1:MITx+6.00x+1T2015", "Intro", "Ed Fo", "Pass", false).Body(),
	}
	for _, body := range jobs {
		o, err := f.h.Handle(f.ctx, jobFor(body))
		if err != nil || !o.Ok {
			t.Fatalf("%s: %v %s", body, err, o.GetErrorReason())
		}
		if o.Design != "default" || !strings.Contains(o.DesignNote, "configured design") {
			t.Errorf("design %q note %q", o.Design, o.DesignNote)
		}
	}
	// Three distinct (course, names): the DemoX name, its -verified
	// variant, and MITx's TEMPLATEFILE with its LMS name.
	if n := strings.Count(f.logs.String(), "certificate design not configured"); n != 3 {
		t.Errorf("fallback logged %d times, want 3:\n%s", n, f.logs)
	}
}

// TestFallbackRecordedOnTheJob: the consumer stores the chosen design and
// the fallback note in the job record and its history.
func TestFallbackRecordedOnTheJob(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 5 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)
	id := xs.Submit(string(testenv.VerifiedLMSJob("jdoe", "Jane Doe")))
	ctx := ctxFor(t)
	cbs, err := xs.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a := answerOf(t, cbs[0]); a["download_uuid"] == "" {
		t.Fatalf("LMS job not answered with a certificate: %v", a)
	}
	// The relay may answer before the consumer records its decision:
	// wait for the design on the record.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	updates, err := env.P.Records.Watch(wctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var rec *certdv1.JobRecord
	for r := range updates {
		if r.Id == "xq-"+itoa(id) && r.Design != "" {
			rec = r
			break
		}
	}
	if rec == nil {
		t.Fatal("the design was never recorded")
	}
	want := `template_pdf "certificate-template-edX-DemoX-verified.pdf" is not a configured design; using "default"`
	if rec.Design != "default" || rec.DesignNote != want {
		t.Errorf("record design %q note %q", rec.Design, rec.DesignNote)
	}
	for _, h := range rec.History {
		if h.State == certdv1.JobState_JOB_STATE_RESULT_READY && h.Note != want {
			t.Errorf("history note %q, want the fallback note", h.Note)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestVerifiedCertificates: "-verified" in template_pdf makes the default
// design and both pages say "Verified <what the course calls it>", and
// YAML designs get .Verified and .Title.
func TestVerifiedCertificates(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext not found: install poppler-utils")
	}
	site := courses.Site{Defaults: map[string]any{"CERTS_ARE_CALLED": "Statement of Accomplishment"}}
	f := newHandler(t, []string{"mine"}, "course-v1:edX+Mine+1:\n  TEMPLATEFILE: mine\n", site, false)
	for _, c := range []struct {
		body     []byte
		pdfWants []string
		title    string
	}{
		{testenv.VerifiedLMSJob("v", "Val Verified"), []string{"Verified Statement of Accomplishment"}, "Verified Statement of Accomplishment"},
		{testenv.LMSJob("h", "Hal Honor"), []string{"Statement of Accomplishment"}, "Statement of Accomplishment"},
		{lms.Job{Action: "create", Username: "m", CourseID: "course-v1:edX+Mine+1", CourseName: "Mine", Name: "Mo Mine",
			Grade: "Pass", TemplatePDF: "certificate-template-edX-Mine-verified.pdf"}.Body(),
			[]string{"mine Verified Statement of Accomplishment (ID verified)"}, "Verified Statement of Accomplishment"},
	} {
		job := jobFor(c.body)
		res, err := f.h.Handle(f.ctx, job)
		if err != nil || !res.Ok {
			t.Fatalf("%v %s", err, res.GetErrorReason())
		}
		pdf, err := f.store.Get(f.ctx, "downloads/"+job.DownloadUuid+"/Certificate.pdf")
		if err != nil {
			t.Fatal(err)
		}
		text := pdfText(t, pdf)
		for _, w := range c.pdfWants {
			if !strings.Contains(text, w) {
				t.Errorf("PDF text lacks %q:\n%s", w, text)
			}
		}
		if !strings.Contains(string(c.body), "verified") && strings.Contains(text, "Verified") {
			t.Errorf("an honor certificate says Verified:\n%s", text)
		}
		for _, page := range []string{"valid.html", "verify.html"} {
			b, err := f.store.Get(f.ctx, "cert/"+job.VerifyUuid+"/"+page)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), c.title) || (c.title == "Statement of Accomplishment") == strings.Contains(string(b), "Verified") {
				t.Errorf("%s does not call it %q", page, c.title)
			}
		}
	}
}

func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", p, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// TestScriptInNamesIsEscapedInPages: markup in a name is drawn as text and
// escaped in the pages, never live.
func TestScriptInNamesIsEscapedInPages(t *testing.T) {
	f := newHandler(t, nil, "", courses.Site{}, false)
	name := `<script>alert("x")</script> O'Brien & Co`
	job := jobFor(testenv.LMSJob("s", name))
	res, err := f.h.Handle(f.ctx, job)
	if err != nil || !res.Ok {
		t.Fatalf("%v %s", err, res.GetErrorReason())
	}
	for _, page := range []string{"valid.html", "verify.html"} {
		b, err := f.store.Get(f.ctx, "cert/"+job.VerifyUuid+"/"+page)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("<script")) || !bytes.Contains(b, []byte("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; O&#39;Brien &amp; Co")) {
			t.Errorf("%s does not escape the name", page)
		}
	}
}

// TestHostileBodiesThroughTheHandler: each hostile body gives one
// permanent error answer with its specific reason and the identity that
// could be read, and nothing is stored.
func TestHostileBodiesThroughTheHandler(t *testing.T) {
	f := newHandler(t, nil, "", courses.Site{}, false)
	for _, c := range testenv.HostileBodies() {
		res, err := f.h.Handle(f.ctx, jobFor([]byte(c.Body)))
		if err != nil {
			t.Errorf("%s: transient error %v", c.Name, err)
			continue
		}
		if res.Ok || !strings.Contains(res.ErrorReason, c.Reason) {
			t.Errorf("%s: ok=%v reason %q, want %q", c.Name, res.Ok, res.ErrorReason, c.Reason)
		}
		var a map[string]string
		if err := json.Unmarshal(res.Answer, &a); err != nil || a["username"] != c.Username || a["course_id"] != c.CourseID || a["error_reason"] != res.ErrorReason {
			t.Errorf("%s: answer %s (%v)", c.Name, res.Answer, err)
		}
	}
	if files := f.files(t); len(files) != 0 {
		t.Errorf("hostile bodies stored %v", files)
	}
}

// TestHostileBodiesAnsweredOnceThroughXQueue: through the xqueue stand-in,
// the bridge and a consumer, every hostile body gets exactly one answer
// with its reason, and no certificate file is written.
func TestHostileBodiesAnsweredOnceThroughXQueue(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 5 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	env.RunConsumer(t, nil, nil)
	cases := testenv.HostileBodies()
	ids := map[int64]testenv.Hostile{}
	for _, c := range cases {
		ids[xs.Submit(c.Body)] = c
	}
	good := xs.Submit(string(testenv.LMSJob("good", "Good Learner")))
	ctx := ctxFor(t)
	if _, err := xs.WaitCallbacks(ctx, len(cases)+1); err != nil {
		t.Fatal(err)
	}
	for id, c := range ids {
		cbs := xs.CallbacksFor(id)
		if len(cbs) != 1 {
			t.Errorf("%s: %d answers", c.Name, len(cbs))
			continue
		}
		a := answerOf(t, cbs[0])
		if !strings.Contains(a["error_reason"], c.Reason) || a["username"] != c.Username || a["course_id"] != c.CourseID {
			t.Errorf("%s: answer %v, want reason %q for %q %q", c.Name, a, c.Reason, c.Username, c.CourseID)
		}
	}
	// Only the good job's files (and the public key) are in the store.
	var stored []string
	_ = filepath.WalkDir(env.StoreDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, "/cert/keys/") {
			stored = append(stored, p)
		}
		return err
	})
	a := answerOf(t, xs.CallbacksFor(good)[0])
	if len(stored) != 4 {
		t.Errorf("stored %d files, want the good job's 4: %v", len(stored), stored)
	}
	for _, p := range stored {
		if !strings.Contains(p, a["download_uuid"]) && !strings.Contains(p, a["verify_uuid"]) {
			t.Errorf("stray file %s", p)
		}
	}
}

// TestRegenKeepsOldFilesWhenItCannotDraw: with strict-designs, a regen
// whose design is missing fails before deleting the old certificate.
func TestRegenKeepsOldFilesWhenItCannotDraw(t *testing.T) {
	f := newHandler(t, nil, "", courses.Site{}, true)
	first := jobFor(lms.Job{Action: "create", Username: "r", CourseID: testenv.Course, CourseName: "Demo", Name: "Ren Ee", Grade: "Pass"}.Body())
	if res, err := f.h.Handle(f.ctx, first); err != nil || !res.Ok {
		t.Fatalf("%v %s", err, res.GetErrorReason())
	}
	before := f.files(t)
	regen := lms.Job{Action: "regen", Username: "r", CourseID: testenv.Course, CourseName: "Demo", Name: "Ren Ee", Grade: "Pass",
		TemplatePDF: lms.TemplateName(testenv.Course, false), DeleteDownloadUUID: first.DownloadUuid, DeleteVerifyUUID: first.VerifyUuid}
	res, err := f.h.Handle(f.ctx, jobFor(regen.Body()))
	if err != nil || res.Ok || !strings.Contains(res.ErrorReason, "unknown certificate design") {
		t.Fatalf("regen: %v ok=%v %q", err, res.GetOk(), res.GetErrorReason())
	}
	if after := f.files(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("files before %v, after %v", before, after)
	}
}
