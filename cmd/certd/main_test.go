package main

// Shared helpers of the command tests: the certd binary (built once per
// test run), subprocesses whose log lines can be awaited, free ports, an
// in-process `run` in a goroutine, and GnuPG checks of stored certificates.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "certd-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// certdBinary builds ./cmd/certd once per test run and returns its path.
func certdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		// go test puts the toolchain's own bin directory first on PATH.
		binPath = filepath.Join(binDir, "certd")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build ./cmd/certd: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(freePort(t)) }

// lines collects the lines a process writes and lets a test await one.
type lines struct {
	name    string
	mu      sync.Mutex
	all     []string
	changed chan struct{}
	closed  bool
}

func newLines(name string) *lines { return &lines{name: name, changed: make(chan struct{})} }

// feed reads r line by line until EOF.
func (l *lines) feed(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Write makes lines an io.Writer (for in-process runs).
func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range strings.SplitAfter(string(p), "\n") {
		if s == "" {
			continue
		}
		if n := len(l.all); n > 0 && !strings.HasSuffix(l.all[n-1], "\n") {
			l.all[n-1] += s
		} else {
			l.all = append(l.all, s)
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range l.all {
		b.WriteString(strings.TrimSuffix(s, "\n"))
		b.WriteByte('\n')
	}
	return b.String()
}

// count is how many lines contain substr.
func (l *lines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.all {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// waitFor waits until n lines contain substr.
func (l *lines) waitFor(ctx context.Context, substr string, n int) error {
	for {
		l.mu.Lock()
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if l.count(substr) >= n {
			return nil
		}
		if closed {
			return fmt.Errorf("%s ended before printing %q", l.name, substr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s: no %q: %w", l.name, substr, ctx.Err())
		}
	}
}

// waitClosed waits until the writer side is closed (the process's output
// is read to the end).
func (l *lines) waitClosed() {
	for {
		l.mu.Lock()
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return
		}
		<-ch
	}
}

// proc is a certd subprocess.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lines // stdout and stderr, merged
	done chan struct{}
	err  error
}

// startProc starts the certd binary with args and extra environment.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(certdBinary(t), args...)
	cmd.Env = append(cleanEnv(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, out: newLines(name), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	pw.Close()
	go p.out.feed(pr)
	go func() {
		p.err = cmd.Wait()
		pr.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.out.text())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit, at most bound.
func (p *proc) stop(bound time.Duration) (exitCode int, err error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(bound)
}

func (p *proc) wait(bound time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(bound):
		return -1, fmt.Errorf("%s did not exit within %s", p.name, bound)
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// cleanEnv is the test process's environment without CERTD_ settings, so
// that a developer's shell cannot change what the tests see.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTD_") {
			out = append(out, kv)
		}
	}
	return out
}

// runResult is the outcome of an in-process run.
type runResult struct {
	code           int
	stdout, stderr string
}

// runCmd calls run in this process and returns its exit code and output.
func runCmd(ctx context.Context, args ...string) runResult {
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return runResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// background runs `run` in a goroutine; its output goes to the returned
// lines; stop cancels it and returns the exit code.
type background struct {
	out, errOut *lines
	cancel      context.CancelFunc
	done        chan int
}

func runBackground(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{out: newLines("stdout"), errOut: newLines("stderr"), cancel: cancel, done: make(chan int, 1)}
	go func() { b.done <- run(ctx, args, b.out, b.errOut) }()
	t.Cleanup(func() {
		b.cancel()
		select {
		case code := <-b.done:
			b.done <- code
		case <-time.After(30 * time.Second):
			t.Errorf("certd %s did not stop within 30s", args[0])
		}
		if t.Failed() {
			t.Logf("--- stdout:\n%s--- stderr:\n%s", b.out.text(), b.errOut.text())
		}
	})
	return b
}

// stop cancels the run and returns its exit code.
func (b *background) stop(t *testing.T) int {
	t.Helper()
	b.cancel()
	select {
	case code := <-b.done:
		b.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("did not stop within 30s")
		return -1
	}
}

// controlClient dials a control service; calls made with
// grpc.WaitForReady(true) wait until it listens.
func controlClient(t *testing.T, addr string) certdv1.ControlClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return certdv1.NewControlClient(conn)
}

// gpgKeyring is a throwaway GnuPG home with one public key imported, to
// check many signatures with one import.
type gpgKeyring struct {
	gpg, home string
}

func newGPGKeyring(t *testing.T, publicKey []byte) *gpgKeyring {
	t.Helper()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Fatalf("gpg not found: install it with 'apt-get install gnupg'")
	}
	dir, err := os.MkdirTemp("", "certd-gpg-") // short path: gpg's socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k := &gpgKeyring{gpg: gpg, home: dir}
	keyFile := filepath.Join(dir, "key.asc")
	if err := os.WriteFile(keyFile, publicKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := k.run("--import", keyFile); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	return k
}

func (k *gpgKeyring) run(args ...string) ([]byte, error) {
	cmd := exec.Command(k.gpg, append([]string{"--homedir", k.home, "--batch", "--no-tty", "--no-autostart"}, args...)...)
	return cmd.CombinedOutput()
}

// verify runs gpg --verify on a stored certificate: the PDF and its
// detached signature under root.
func (k *gpgKeyring) verify(root, downloadUUID, verifyUUID string) error {
	pdf := filepath.Join(root, "downloads", downloadUUID, "Certificate.pdf")
	sig := filepath.Join(root, "cert", verifyUUID, "Certificate.pdf.sig")
	return k.verifyFiles(pdf, sig)
}

// verifyFiles runs gpg --verify sig pdf.
func (k *gpgKeyring) verifyFiles(pdf, sig string) error {
	if out, err := k.run("--verify", sig, pdf); err != nil {
		return fmt.Errorf("gpg --verify %s %s: %v\n%s", sig, pdf, err, out)
	}
	return nil
}

// jetStreamAt connects to NATS at url for the rest of the test.
func jetStreamAt(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
