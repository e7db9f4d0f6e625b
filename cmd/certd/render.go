package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/internal/lms"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func init() {
	commands["render"] = command{"render certificates into a directory (preview a design, batch jobs)", runRender}
}

// runRender renders certificates locally with the storage layout, like the
// old agent's create_pdfs.py.
func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s renderParts
	c := newConfig("render", stderr, &s)
	out := c.fs.String("out", "", "directory to write certificates into (required)")
	noSign := c.fs.Bool("no-sign", false, "do not sign (no .sig and no verification pages)")
	jobsFile := c.fs.String("jobs", "", "JSON lines file, each line an xqueue job body")
	gallery := c.fs.String("gallery", "", "write one certificate per supported script and a contact sheet into this directory, then exit")
	var req lms.Request
	c.fs.StringVar(&req.Name, "name", "", "learner name")
	c.fs.StringVar(&req.CourseID, "course-id", "course-v1:edX+DemoX+Demo_Course", "course id")
	c.fs.StringVar(&req.CourseName, "course-name", "Demonstration Course", "course name")
	c.fs.StringVar(&req.Grade, "grade", "Pass", "grade")
	c.fs.StringVar(&req.IssuedDate, "issued-date", "", "issue date YYYY-MM-DD (default: settings or today)")
	c.fs.StringVar(&req.Designation, "designation", "", "title after the name")
	c.fs.StringVar(&req.TemplatePDF, "template", "", "design name or template PDF file name")
	c.fs.StringVar(&req.Username, "username", "preview", "username")
	if err := c.parse(args); err != nil {
		return err
	}
	log := newLogger(c, &s.Log, io.Discard)
	if *gallery != "" {
		return renderGallery(c, &s.Handler.Renderer, log, *gallery, stdout)
	}
	if *out == "" {
		fmt.Fprintln(stderr, "certd render: --out is required")
		return errUsage
	}
	if *jobsFile == "" && req.Name == "" {
		fmt.Fprintln(stderr, "certd render: give --name (one certificate) or --jobs FILE (a batch)")
		return errUsage
	}
	u, err := localStorage(*out)
	if err != nil {
		return err
	}
	s.Handler.Storage.URL = u
	if s.Handler.DownloadURL == "" {
		s.Handler.DownloadURL = "http://localhost:8080"
	}
	var bodies [][]byte
	if *jobsFile != "" {
		var err error
		if bodies, err = readJobs(*jobsFile); err != nil {
			return err
		}
	} else {
		req.Action = "create"
		bodies = append(bodies, requestJSON(req))
	}
	mode := signDevKey
	if *noSign {
		mode = signNone
	}
	parts, err := newHandler(ctx, c, &s.Handler, s.Data.Dir, log, mode, nil)
	if err != nil {
		return err
	}
	if err := c.err(); err != nil {
		return err
	}
	return renderBatch(ctx, parts.handler, bodies, s.Workers.Workers, parts.fileDir, stdout, stderr)
}

func readJobs(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jobs file: %w", err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, []byte(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("jobs file %s: %w", path, err)
	}
	return out, nil
}

func requestJSON(r lms.Request) []byte {
	m := map[string]any{"action": r.Action, "username": r.Username, "course_id": r.CourseID, "course_name": r.CourseName, "name": r.Name}
	for k, v := range map[string]string{"grade": r.Grade, "issued_date": r.IssuedDate, "designation": r.Designation, "template_pdf": r.TemplatePDF, "delete_download_uuid": r.DeleteDownloadUUID, "delete_verify_uuid": r.DeleteVerifyUUID} {
		if v != "" {
			m[k] = v
		}
	}
	if r.ExampleCertificate {
		m["example_certificate"] = true
	}
	return mustJSON(m)
}

func renderBatch(ctx context.Context, h *consumer.Handler, bodies [][]byte, workers int, dir string, stdout, stderr io.Writer) error {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	start := time.Now()
	type outcome struct {
		line int
		url  string
		err  string
	}
	results := make([]outcome, len(bodies))
	var (
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
		next = make(chan int)
	)
	bar := newProgress(stderr, len(bodies))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				job := &certdv1.Job{
					Id: fmt.Sprintf("render-%d", i+1), Request: bodies[i],
					DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID(),
					AcceptedAt: timestamppb.Now(),
				}
				o := outcome{line: i + 1}
				res, err := h.Handle(ctx, job)
				switch {
				case err != nil:
					o.err = err.Error()
				case !res.Ok:
					o.err = res.ErrorReason
				default:
					o.url = filepath.Join(dir, "downloads", job.DownloadUuid)
				}
				results[i] = o
				mu.Lock()
				done++
				bar.set(done)
				mu.Unlock()
			}
		}()
	}
	for i := range bodies {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	bar.finish()
	var failed []outcome
	for _, o := range results {
		if o.err != "" {
			failed = append(failed, o)
		} else if o.url != "" && len(bodies) <= 20 {
			fmt.Fprintln(stdout, o.url)
		}
	}
	fmt.Fprintf(stdout, "rendered %d of %d certificates into %s in %s; %d failed\n",
		len(bodies)-len(failed), len(bodies), dir, time.Since(start).Round(time.Millisecond), len(failed))
	for _, o := range failed {
		fmt.Fprintf(stderr, "job %d failed: %s\n", o.line, o.err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d jobs failed", len(failed), len(bodies))
	}
	return ctx.Err()
}

// progress is a one-line progress bar for batches on a terminal.
type progress struct {
	w     io.Writer
	total int
	on    bool
}

func newProgress(w io.Writer, total int) *progress {
	f, ok := w.(*os.File)
	on := ok && total > 1
	if on {
		st, err := f.Stat()
		on = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	return &progress{w: w, total: total, on: on}
}

func (p *progress) set(n int) {
	if !p.on {
		return
	}
	const width = 30
	filled := width * n / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, p.total)
}

func (p *progress) finish() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}

// renderGallery writes the script gallery (document.Samples) into dir.
func renderGallery(c *config, s *RendererSettings, log *slog.Logger, dir string, stdout io.Writer) error {
	r, err := newRenderer(c, s, log)
	if err != nil {
		c.bad(&s.Designs, "%v", err)
	}
	if err := c.err(); err != nil {
		return err
	}
	if err := r.WriteGallery(dir, document.Samples); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d certificates and contact-sheet.pdf into %s\n", len(document.Samples), dir)
	return nil
}
