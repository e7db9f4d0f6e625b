//go:build unix

package s3test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestStartGivesFreshBucketsOnOneServer(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Bucket == b.Bucket {
		t.Fatalf("two Start calls share bucket %q", a.Bucket)
	}
	if a.Endpoint != b.Endpoint || a.Region != "us-east-1" {
		t.Fatalf("want one shared server in us-east-1, got %s/%s and %s", a.Endpoint, a.Region, b.Endpoint)
	}
	ctx := context.Background()
	st := a.Open(t, "p")
	if err := st.Put(ctx, "cert/x/valid.html", []byte("hello"), "text/html"); err != nil {
		t.Fatal(err)
	}
	out, err := b.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 0 {
		t.Fatalf("bucket %s is not empty: %d objects", b.Bucket, len(out.Contents))
	}
	got, err := a.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.Bucket), Key: aws.String("p/cert/x/valid.html")})
	if err != nil {
		t.Fatalf("object written through Open is not at prefix/key: %v", err)
	}
	got.Body.Close()
}

func TestBucketRemovedAfterTest(t *testing.T) {
	var s *Server
	t.Run("user", func(t *testing.T) {
		s = Start(t)
		st := s.Open(t, "")
		if err := st.Put(context.Background(), "downloads/x/Certificate.pdf", []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	})
	_, err := s.Client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)})
	if err == nil {
		t.Fatalf("bucket %s still exists after its test finished", s.Bucket)
	}
}

func TestDedicatedServerStoppedAtCleanup(t *testing.T) {
	var s *Server
	t.Run("user", func(t *testing.T) {
		s = StartDedicated(t)
		if _, err := s.Client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
			t.Fatalf("dedicated bucket missing: %v", err)
		}
	})
	select {
	case <-s.Exited():
	default:
		t.Fatal("dedicated versitygw still running after its test's cleanup")
	}
	if err := syscall.Kill(-s.Pid(), 0); err != syscall.ESRCH {
		t.Fatalf("process group %d still has members (kill 0: %v)", s.Pid(), err)
	}
}

func TestMissingBinaryExplainsInstall(t *testing.T) {
	t.Setenv("VERSITYGW", "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOBIN", t.TempDir())
	t.Setenv("GOPATH", t.TempDir())
	_, err := findBinary()
	if err == nil {
		t.Fatal("findBinary found versitygw in empty directories")
	}
	if !strings.Contains(err.Error(), InstallHint) {
		t.Fatalf("error %q does not say how to install versitygw", err)
	}
}
