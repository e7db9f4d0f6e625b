package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/pages"
	"github.com/certd-dev/certd/consumer/signing"
	"github.com/certd-dev/certd/internal/credential"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func init() {
	commands["keygen"] = command{"make an OpenPGP signing key pair for a site (--credential: the credential key)", runKeygen}
	commands["render"] = command{"render certificates into a directory (preview a design, batch jobs)", runRender}
	commands["verify"] = command{"check a certificate PDF against its signature (files or a verification URL)", runVerify}
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "who signs, e.g. \"Example University Certificates\" (required)")
	email := fs.String("email", "", "contact e-mail in the key (required)")
	out := fs.String("out", ".", "directory for signing-key.asc (private) and signing-key.pub.asc")
	passFile := fs.String("passphrase-file", "", "protect the private key with the passphrase in this file")
	rsa := fs.Bool("rsa", false, "make an RSA-3072 key instead of Ed25519 (for old verifiers)")
	cred := fs.Bool("credential", false, "make the Ed25519 key that signs Open Badges credentials (credential-key.pem) instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cred {
		path, pub, err := keygenCredential(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "credential key: %s (keep it secret; set CERTD_CREDENTIAL_KEY to this path)\npublic key:     %s\n", path, credential.PublicKeyMultibase(pub))
		return nil
	}
	if *name == "" || *email == "" {
		fmt.Fprintln(stderr, "certd keygen: --name and --email are required")
		fs.Usage()
		return errUsage
	}
	var opts []signing.KeyOption
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			return fmt.Errorf("passphrase file: %w", err)
		}
		opts = append(opts, signing.WithPassphrase([]byte(strings.TrimRight(string(b), "\r\n"))))
	}
	if *rsa {
		opts = append(opts, signing.WithRSA(3072))
	}
	priv, pub, err := signing.GenerateKey(*name, *email, opts...)
	if err != nil {
		return err
	}
	privPath := filepath.Join(*out, "signing-key.asc")
	pubPath := filepath.Join(*out, "signing-key.pub.asc")
	if _, err := os.Stat(privPath); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite a signing key", privPath)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return err
	}
	var pass []byte
	if *passFile != "" {
		b, _ := os.ReadFile(*passFile)
		pass = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	s, err := signing.NewSigner(priv, pass)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (keep it secret; set CERTD_SIGNING_KEY to this path)\npublic key:  %s\nfingerprint: %s\n", privPath, pubPath, s.Fingerprint())
	return nil
}

// runRender renders certificates locally with the storage layout, like the
// old agent's create_pdfs.py.
func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newConfig("render", stderr, join(handlerSettings, []string{"data-dir", "log-level", "log-format", "workers"})...)
	out := c.fs.String("out", "", "directory to write certificates into (required)")
	noSign := c.fs.Bool("no-sign", false, "do not sign (no .sig and no verification pages)")
	jobsFile := c.fs.String("jobs", "", "JSON lines file, each line an xqueue job body")
	gallery := c.fs.String("gallery", "", "write one certificate per supported script and a contact sheet into this directory, then exit")
	var req pipeline.Request
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
	log := newLogger(c, io.Discard)
	if *gallery != "" {
		return renderGallery(c, log, *gallery, stdout)
	}
	if *out == "" {
		fmt.Fprintln(stderr, "certd render: --out is required")
		return errUsage
	}
	if *jobsFile == "" && req.Name == "" {
		fmt.Fprintln(stderr, "certd render: give --name (one certificate) or --jobs FILE (a batch)")
		return errUsage
	}
	if err := c.useLocalStorage(*out); err != nil {
		return err
	}
	if c.str("download-url") == "" {
		c.values["download-url"] = "http://localhost:8080"
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
	parts, err := newHandler(ctx, c, log, mode, nil)
	if err != nil {
		return err
	}
	workers := c.int("workers")
	if err := c.err(); err != nil {
		return err
	}
	return renderBatch(ctx, parts.handler, bodies, workers, parts.fileDir, stdout, stderr)
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

func requestJSON(r pipeline.Request) []byte {
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
					DownloadUuid: pipeline.NewUUID(), VerifyUuid: pipeline.NewUUID(),
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

// runVerify checks a certificate: local files, or a verification URL.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certd verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pdfPath := fs.String("pdf", "", "the certificate PDF")
	sigPath := fs.String("sig", "", "its detached signature (default: PDF path + .sig)")
	keyPath := fs.String("key", "", "the signer's public key (with --url: overrides the published one)")
	pageURL := fs.String("url", "", "verification URL printed on the certificate, <verify base>/cert/<uuid>")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on fetching after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var pdf, sig, key []byte
	var links pages.Links
	var err error
	switch {
	case *pageURL != "":
		var keyURL string
		pdf, sig, key, keyURL, links, err = fetchCertificate(ctx, *pageURL)
		if err != nil {
			return err
		}
		if *keyPath != "" {
			if key, err = os.ReadFile(*keyPath); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "using the public key published at %s\n", keyURL)
		}
	case *pdfPath != "":
		if *sigPath == "" {
			*sigPath = *pdfPath + ".sig"
		}
		if *keyPath == "" {
			fmt.Fprintln(stderr, "certd verify: --key is required with --pdf")
			return errUsage
		}
		for _, f := range []struct {
			path string
			dst  *[]byte
		}{{*pdfPath, &pdf}, {*sigPath, &sig}, {*keyPath, &key}} {
			if *f.dst, err = os.ReadFile(f.path); err != nil {
				return err
			}
		}
	default:
		fmt.Fprintln(stderr, "certd verify: give --url URL, or --pdf FILE --key KEY [--sig FILE]")
		return errUsage
	}
	switch err := signing.Verify(pdf, sig, key); {
	case err == nil && links.Credential != "":
		fmt.Fprintln(stdout, "signature: the PDF is exactly what the key's owner signed")
		return checkCredential(ctx, *pageURL, links.Credential, pdf, stdout)
	case err == nil:
		fmt.Fprintln(stdout, "VALID: the certificate is exactly what the key's owner signed")
		return nil
	case errors.Is(err, signing.ErrTampered):
		fmt.Fprintln(stdout, "TAMPERED: the signature does not match this file; it was changed after signing")
	case errors.Is(err, signing.ErrWrongKey):
		fmt.Fprintln(stdout, "WRONG KEY: the signature was made by a different key")
	default:
		fmt.Fprintln(stdout, "INVALID: cannot check:", err)
	}
	return errors.New("verification failed")
}

// fetchCertificate follows a verification URL to the PDF, signature and
// public key linked from its verify.html.
func fetchCertificate(ctx context.Context, page string) (pdf, sig, key []byte, keyURL string, links pages.Links, err error) {
	base, err := url.Parse(strings.TrimRight(page, "/") + "/")
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, nil, nil, "", links, fmt.Errorf("--url %q is not an http(s) URL", page)
	}
	verifyURL := base.ResolveReference(&url.URL{Path: "verify.html"})
	html, err := fetch(ctx, verifyURL.String())
	if err != nil {
		return nil, nil, nil, "", links, err
	}
	links, err = pages.ParseVerifyLinks(html)
	if err != nil {
		return nil, nil, nil, "", links, fmt.Errorf("%s: %w", verifyURL, err)
	}
	pdfRef, sigRef, keyRef := links.PDF, links.Signature, links.PublicKey
	if links.Credential != "" {
		u, err := verifyURL.Parse(links.Credential)
		if err != nil {
			return nil, nil, nil, "", links, fmt.Errorf("%s: credential link: %w", verifyURL, err)
		}
		links.Credential = u.String()
	}
	get := func(ref string) ([]byte, string, error) {
		u, err := verifyURL.Parse(ref)
		if err != nil {
			return nil, "", err
		}
		b, err := fetch(ctx, u.String())
		return b, u.String(), err
	}
	if pdf, _, err = get(pdfRef); err != nil {
		return
	}
	if sig, _, err = get(sigRef); err != nil {
		return
	}
	key, keyURL, err = get(keyRef)
	return
}

func fetch(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %d", u, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// renderGallery writes the script gallery (document.Samples) into dir.
func renderGallery(c *config, log *slog.Logger, dir string, stdout io.Writer) error {
	r, err := newRenderer(c, log)
	if err != nil {
		c.bad("designs", "%v", err)
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
