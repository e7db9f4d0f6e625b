//go:build unix

// Package s3test runs a real S3 server, versitygw, for tests.
//
// Two ways to get one:
//
//   - Start(t) gives each caller a fresh, empty bucket on one versitygw
//     process shared by the whole test binary (started on first use, about
//     a second). Buckets are emptied and removed in t.Cleanup. This is the
//     quick default and is safe for parallel tests.
//   - StartDedicated(t) starts a private versitygw process, stopped in
//     t.Cleanup; use it for fault injection (Stop, Pause, Resume).
//
// The shared process is killed when the test binary exits (Linux parent-death
// signal); to also remove its data directory, call Main from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
//
// If versitygw is not installed the test fails with the install command.
// The binary is looked up as $VERSITYGW, then versitygw on PATH, then in
// $GOBIN and $(go env GOPATH)/bin.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certd-dev/certd/consumer/storage"
)

// InstallHint is the command that installs the versitygw version the tests
// were written against.
const InstallHint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Region is the only region versitygw accepts.
const Region = "us-east-1"

// startTimeout bounds how long a starting versitygw may take to answer.
const startTimeout = 30 * time.Second

// Server is one bucket on a running versitygw.
type Server struct {
	// Endpoint is the base URL, e.g. "http://127.0.0.1:39123".
	Endpoint string
	// Region is always "us-east-1".
	Region string
	// AccessKey and Secret are the root credentials of the server.
	AccessKey, Secret string
	// Bucket is the bucket created for this Server; it starts empty.
	Bucket string

	proc *process
}

// process is one running versitygw.
type process struct {
	endpoint, access, secret string
	dir                      string // holds root/ (buckets are its subdirectories) and meta/ (sidecar, if needed)
	cmd                      *exec.Cmd
	exited                   chan struct{} // closed when the process has exited
	output                   *lockedBuffer
	dedicated                bool
	stopOnce                 sync.Once
}

var (
	sharedMu   sync.Mutex
	shared     *process
	sharedErr  error
	bucketSeq  atomic.Int64
	randSuffix = randomHex(3)
)

// Start returns a fresh, empty bucket on the test binary's shared versitygw,
// starting it on first use. The bucket is emptied and deleted in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		dir, err := os.MkdirTemp("", "certd-s3test-")
		if err == nil {
			shared, err = startProcess(dir, false)
			if err != nil {
				os.RemoveAll(dir)
			}
		}
		sharedErr = err
	}
	p, err := shared, sharedErr
	sharedMu.Unlock()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	select {
	case <-p.exited:
		t.Fatalf("s3test: shared versitygw has exited; output:\n%s", p.output.String())
	default:
	}
	s := p.server()
	s.createBucket(t)
	t.Cleanup(func() { s.removeBucket(t) })
	return s
}

// StartDedicated starts a private versitygw with one empty bucket, stopped
// (process group killed) in t.Cleanup.
func StartDedicated(t testing.TB) *Server {
	t.Helper()
	p, err := startProcess(t.TempDir(), true)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(p.stop)
	s := p.server()
	s.createBucket(t)
	return s
}

// Main runs the tests and then stops the shared server and removes its
// data. Use it from TestMain: os.Exit(s3test.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.stop()
		os.RemoveAll(shared.dir)
		shared = nil
	}
	return code
}

// URL returns the storage URL of this bucket with an optional key prefix,
// e.g. "s3://bucket/prefix".
func (s *Server) URL(prefix string) string {
	u := "s3://" + s.Bucket
	if p := strings.Trim(prefix, "/"); p != "" {
		u += "/" + p
	}
	return u
}

// Options returns the storage options that reach this server: endpoint,
// region, path-style addressing and the root credentials.
func (s *Server) Options() []storage.Option {
	return []storage.Option{
		storage.WithEndpoint(s.Endpoint),
		storage.WithRegion(s.Region),
		storage.WithPathStyle(true),
		storage.WithCredentials(s.AccessKey, s.Secret),
	}
}

// Open returns a storage.Store on this bucket under prefix ("" for none);
// extra options (e.g. storage.WithCacheControl) are applied after Options.
func (s *Server) Open(t testing.TB, prefix string, opts ...storage.Option) storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), s.URL(prefix), append(s.Options(), opts...)...)
	if err != nil {
		t.Fatalf("s3test: open store: %v", err)
	}
	return st
}

// Client returns a raw S3 client for this server, for assertions the Store
// interface does not expose (HeadObject, presigned URLs, bucket listings).
func (s *Server) Client() *s3.Client {
	return newClient(s.Endpoint, s.AccessKey, s.Secret)
}

// Stop kills a dedicated server now (for testing unavailability). It is
// idempotent; Cleanup calls it again harmlessly.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mustBeDedicated(t)
	s.proc.stop()
}

// Pause freezes a dedicated server (SIGSTOP): connections are accepted by
// the kernel but never answered, like a hung server. Resume undoes it;
// stopping a paused server works too.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mustBeDedicated(t)
	if err := syscall.Kill(-s.proc.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("s3test: pause: %v", err)
	}
}

// Resume continues a paused dedicated server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mustBeDedicated(t)
	if err := syscall.Kill(-s.proc.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatalf("s3test: resume: %v", err)
	}
}

// Exited returns a channel closed once the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.proc.exited }

// Pid returns the process id (also the process group id) of the server.
func (s *Server) Pid() int { return s.proc.cmd.Process.Pid }

func (s *Server) mustBeDedicated(t testing.TB) {
	t.Helper()
	if !s.proc.dedicated {
		t.Fatalf("s3test: Stop/Pause/Resume need a server from StartDedicated, not the shared one")
	}
}

func (p *process) server() *Server {
	return &Server{
		Endpoint:  p.endpoint,
		Region:    Region,
		AccessKey: p.access,
		Secret:    p.secret,
		Bucket:    fmt.Sprintf("certd-test-%s-%d", randSuffix, bucketSeq.Add(1)),
		proc:      p,
	}
}

func (s *Server) createBucket(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", s.Bucket, err)
	}
}

// removeBucket empties and deletes the bucket (best effort: failures are
// logged, the data directory goes away with the server anyway).
func (s *Server) removeBucket(t testing.TB) {
	select {
	case <-s.proc.exited:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := s.Client()
	var keys []string
	pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Logf("s3test: cleanup: list %s: %v", s.Bucket, err)
			return
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	for _, k := range keys {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(k)}); err != nil {
			t.Logf("s3test: cleanup: delete %s/%s: %v", s.Bucket, k, err)
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Logf("s3test: cleanup: delete bucket %s: %v", s.Bucket, err)
	}
}

func newClient(endpoint, access, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     Region,
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// findBinary locates versitygw; see the package documentation.
func findBinary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, d := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found on PATH, in $GOBIN or in %v; install it with: %s", dirs, InstallHint)
}

// startProcess starts versitygw on a free loopback port serving dir and
// waits until it answers S3 requests. A port taken between choosing and
// binding is retried.
func startProcess(dir string, dedicated bool) (*process, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		p, err := tryStart(bin, dir, dedicated)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func tryStart(bin, dir string, dedicated bool) (*process, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &process{
		endpoint:  "http://" + addr,
		access:    "certdtest" + randomHex(4),
		secret:    randomHex(16),
		dir:       dir,
		exited:    make(chan struct{}),
		output:    &lockedBuffer{},
		dedicated: dedicated,
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	args := []string{"--access", p.access, "--secret", p.secret, "--port", addr, "posix"}
	if !hasXattrs(root) {
		// versitygw keeps metadata (Content-Type, ETag) in extended
		// attributes; without them it needs a sidecar directory.
		sidecar := filepath.Join(dir, "meta")
		if err := os.MkdirAll(sidecar, 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--sidecar", sidecar)
	}
	args = append(args, root)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls ListBuckets until it succeeds, the process exits or the
// deadline passes.
func (p *process) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := newClient(p.endpoint, p.access, p.secret)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.ListBuckets(reqCtx, &s3.ListBucketsInput{}, func(o *s3.Options) {
			o.RetryMaxAttempts = 1
		})
		reqCancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("versitygw exited before becoming ready: %v\noutput:\n%s", p.cmd.ProcessState, p.output.String())
		case <-ctx.Done():
			return fmt.Errorf("versitygw not ready after %v: %v\noutput:\n%s", startTimeout, err, p.output.String())
		case <-tick.C:
		}
	}
}

// stop kills the process group and waits for the process to exit.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		pid := p.cmd.Process.Pid
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
	})
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lockedBuffer collects process output safely from two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // enough to diagnose; do not grow without bound
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
