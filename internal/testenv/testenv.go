// Package testenv starts the real pieces of certd for tests: an embedded
// NATS server with JetStream, the pipeline, a consumer handler with the real
// renderer, signer and file storage, and helpers to run the bridge and
// consumers and to check signatures with GnuPG.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/signing"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Base URLs the test handler puts in answers.
const (
	DownloadURL = "https://certs.example.test"
	VerifyURL   = "https://verify.example.test"
)

// Env is a running certd environment for one test.
type Env struct {
	T        testing.TB
	Server   *server.Server
	P        *pipeline.Pipeline
	Opts     pipeline.Options
	Store    storage.Store
	StoreDir string
	Signer   *signing.Signer
	Handler  *consumer.Handler
	Log      *slog.Logger
}

var (
	rendererOnce sync.Once
	renderer     *document.Renderer
	rendererErr  error
	keyOnce      sync.Once
	signer       *signing.Signer
	keyErr       error
)

// Renderer is one renderer shared by the tests of a binary (fonts are
// parsed once per process, as in production).
func Renderer(t testing.TB) *document.Renderer {
	rendererOnce.Do(func() { renderer, rendererErr = document.NewRenderer() })
	if rendererErr != nil {
		t.Fatalf("renderer: %v", rendererErr)
	}
	return renderer
}

// Signer is one generated signing key shared by the tests of a binary.
func Signer(t testing.TB) *signing.Signer {
	keyOnce.Do(func() {
		priv, _, err := signing.GenerateKey("certd test", "test@certd.test")
		if err != nil {
			keyErr = err
			return
		}
		signer, keyErr = signing.NewSigner(priv, nil)
	})
	if keyErr != nil {
		t.Fatalf("signer: %v", keyErr)
	}
	return signer
}

// Start starts NATS and opens the pipeline. opts tunes the topology (tests
// use a short AckWait).
func Start(t testing.TB, opts pipeline.Options) *Env {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	e := &Env{T: t, Server: s, Opts: opts, Log: Logger(t)}
	e.P = e.Connect(t)
	e.StoreDir = t.TempDir()
	e.Store, err = storage.Open(context.Background(), "file://"+e.StoreDir)
	if err != nil {
		t.Fatal(err)
	}
	e.Signer = Signer(t)
	catalog, err := courses.Load("", courses.Site{})
	if err != nil {
		t.Fatal(err)
	}
	e.Handler = consumer.NewHandler(consumer.HandlerConfig{
		Store: e.Store, Renderer: Renderer(t), Signer: e.Signer, Catalog: catalog,
		DownloadURL: DownloadURL, VerifyURL: VerifyURL, Logger: e.Log,
	})
	if err := e.Store.Put(context.Background(), consumer.PublicKeyKey(e.Signer.Fingerprint()), e.Signer.PublicKey(), "application/pgp-keys"); err != nil {
		t.Fatal(err)
	}
	return e
}

// Connect opens a new NATS connection and pipeline handle, closed at the
// end of the test (or earlier by closing p.NC, to simulate a crash).
func (e *Env) Connect(t testing.TB) *pipeline.Pipeline {
	t.Helper()
	nc, err := nats.Connect(e.Server.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pipeline.Open(ctx, nc, e.Opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Run runs f (a component's Run) in a goroutine until the returned stop is
// called or the test ends; stop waits for f to return.
func Run(t testing.TB, f func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil {
			t.Errorf("component stopped: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// RunBridge runs a bridge over the env's pipeline.
func (e *Env) RunBridge(t testing.TB, opts ...bridge.Option) (stop func()) {
	opts = append([]bridge.Option{bridge.WithLogger(e.Log), bridge.WithPollInterval(20 * time.Millisecond)}, opts...)
	b := bridge.New(e.P, opts...)
	return Run(t, b.Run)
}

// RunConsumer runs a consumer with handler h (nil: the env's handler).
func (e *Env) RunConsumer(t testing.TB, p *pipeline.Pipeline, h consumer.JobHandler, opts ...consumer.Option) (stop func()) {
	if p == nil {
		p = e.P
	}
	if h == nil {
		h = e.Handler
	}
	opts = append([]consumer.Option{consumer.WithLogger(e.Log), consumer.WithWorkers(2), consumer.WithRetryDelay(50 * time.Millisecond)}, opts...)
	c := consumer.New(p, h, opts...)
	return Run(t, c.Run)
}

// Logger writes to the test log at debug level when CERTD_TEST_LOG is set,
// and only warnings otherwise.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("CERTD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// GPGVerify checks a detached signature with GnuPG itself, in a throwaway
// keyring holding only publicKey.
func GPGVerify(t testing.TB, data, sig, publicKey []byte) error {
	t.Helper()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Fatalf("gpg not found: install it with 'apt-get install gnupg'")
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "gnupg")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"data": data, "data.sig": sig, "key.asc": publicKey}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--no-tty"}, args...)...)
		return cmd.CombinedOutput()
	}
	if out, err := run("--import", filepath.Join(dir, "key.asc")); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	if out, err := run("--verify", filepath.Join(dir, "data.sig"), filepath.Join(dir, "data")); err != nil {
		return &GPGError{Output: string(out)}
	}
	return nil
}

// GPGError is a failed gpg --verify with what gpg said.
type GPGError struct{ Output string }

func (e *GPGError) Error() string { return "gpg --verify failed: " + e.Output }

// XQueue credentials of the stand-in.
const (
	XQueueUser     = "certd"
	XQueuePassword = "s3cret-pass"
)

// XQueue starts an xqueue stand-in and returns it with a client of it.
func (e *Env) XQueue(t testing.TB, opts ...xqueuetest.Option) (*xqueuetest.Server, *xqueue.Client) {
	t.Helper()
	xs := xqueuetest.NewServer(append([]xqueuetest.Option{xqueuetest.WithUser(XQueueUser, XQueuePassword)}, opts...)...)
	t.Cleanup(xs.Close)
	xq, err := xqueue.New(xqueue.Config{BaseURL: xs.URL(), Username: XQueueUser, Password: XQueuePassword, Logger: e.Log,
		RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return xs, xq
}

// NewHandler is the env's handler writing to another store.
func NewHandler(t testing.TB, e *Env, store consumer.Store) *consumer.Handler {
	catalog, err := courses.Load("", courses.Site{})
	if err != nil {
		t.Fatal(err)
	}
	return consumer.NewHandler(consumer.HandlerConfig{
		Store: store, Renderer: Renderer(t), Signer: e.Signer, Catalog: catalog,
		DownloadURL: DownloadURL, VerifyURL: VerifyURL, Logger: e.Log,
	})
}

// WaitState waits for a job record to reach a state and returns it.
func WaitState(ctx context.Context, e *Env, id string, state certdv1.JobState) (*certdv1.JobRecord, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := e.P.Records.Watch(ctx, true)
	if err != nil {
		return nil, err
	}
	for rec := range updates {
		if rec.Id == id && rec.State == state {
			return rec, nil
		}
	}
	return nil, fmt.Errorf("job %s never reached %s: %w", id, state, ctx.Err())
}
