package faults_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// gateway is a versitygw process that can be killed and started again on
// the same port and directory, as an operator restarts a storage server.
type gateway struct {
	bin, addr, dir string
	access, secret string
	cmd            *exec.Cmd
	exited         chan struct{}
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		bin = filepath.Join(goPath(t), "bin", "versitygw")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := &gateway{bin: bin, addr: addr, dir: t.TempDir(), access: "faultsaccess", secret: "faults-secret-0123456789"}
	g.start(t)
	t.Cleanup(g.kill)
	return g
}

func goPath(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("versitygw not on PATH and no GOPATH: %v", err)
	}
	return string(out[:len(out)-1])
}

// start runs versitygw and waits until it answers ListBuckets.
func (g *gateway) start(t *testing.T) {
	t.Helper()
	root, meta := filepath.Join(g.dir, "root"), filepath.Join(g.dir, "meta")
	for _, d := range []string{root, meta} {
		if err := mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	g.cmd = exec.Command(g.bin, "--access", g.access, "--secret", g.secret, "--port", g.addr, "posix", "--sidecar", meta, root)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	g.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(g.cmd, g.exited)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := g.client()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.ListBuckets(rctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		rcancel()
		if err == nil {
			return
		}
		select {
		case <-g.exited:
			t.Fatalf("versitygw exited at start: %v", g.cmd.ProcessState)
		case <-ctx.Done():
			t.Fatalf("versitygw not ready: %v", err)
		case <-time.After(20 * time.Millisecond): // poll interval; the server sends no readiness event
		}
	}
}

// kill stops the process group with SIGKILL and waits for the exit.
func (g *gateway) kill() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
}

func (g *gateway) client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + g.addr), Region: "us-east-1", UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(g.access, g.secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func (g *gateway) open(t *testing.T, bucket string) storage.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := g.client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, "s3://"+bucket, storage.WithEndpoint("http://"+g.addr), storage.WithRegion("us-east-1"),
		storage.WithPathStyle(true), storage.WithCredentials(g.access, g.secret))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Fault 2: S3 goes away in the middle of a batch (versitygw killed), and
// comes back on the same port and directory. Jobs that failed meanwhile
// retry and complete; every submission is answered exactly once and no
// file is orphaned.
func TestFaultS3DownThenBack(t *testing.T) {
	const n = 8
	e := newBatchEnv(t, 60*time.Second, pipeline.Options{AckWait: 5 * time.Second})
	gw := newGateway(t)
	store := gw.open(t, "certs")
	if err := store.Put(e.ctx, consumer.PublicKeyKey(e.Signer.Fingerprint()), e.Signer.PublicKey(), "application/pgp-keys"); err != nil {
		t.Fatal(err)
	}
	e.runBridge(t)
	e.runConsumer(t, testenv.NewHandler(t, e.Env, store), consumer.WithMaxAttempts(50), consumer.WithRetryDelay(100*time.Millisecond))

	updates, err := e.P.Records.Watch(e.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	ids := submit(t, e.xs, n)
	if _, err := e.xs.WaitCallbacks(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	gw.kill()
	down := time.Now()
	// Wait until a job has failed on the missing storage and is retrying.
	for rec := range updates {
		if rec.State == certdv1.JobState_JOB_STATE_RETRYING {
			t.Logf("job %s retrying: %s", rec.Id, rec.LastError)
			break
		}
	}
	if e.ctx.Err() != nil {
		t.Fatal("no job retried while S3 was down")
	}
	gw.start(t)
	t.Logf("S3 was down for %s; %d of %d answered before it returned", time.Since(down).Round(time.Millisecond), len(e.xs.Callbacks()), n)
	if _, err := e.xs.WaitCallbacks(e.ctx, n); err != nil {
		t.Fatal(err)
	}
	e.check(t, ids, store)
}

func mkdir(d string) error { return os.MkdirAll(d, 0o755) }
