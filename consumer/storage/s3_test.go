package storage_test

import (
	"context"
	"errors"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/consumer/storage/s3test"
)

func TestS3ObjectMetadata(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	st := srv.Open(t, "pre", storage.WithCacheControl("public, max-age=600"))
	cases := []struct{ key, ct, want string }{
		{"downloads/" + uuidA + "/Certificate.pdf", "application/pdf", "application/pdf"},
		{"cert/" + uuidA + "/Certificate.pdf.sig", "application/pgp-signature", "application/pgp-signature"},
		{"cert/" + uuidA + "/valid.html", "text/html; charset=utf-8", "text/html; charset=utf-8"},
		{"cert/" + uuidA + "/verify.html", "", "text/html; charset=utf-8"}, // derived from the extension
		{"cert/" + uuidA + "/blob", "", "application/octet-stream"},
	}
	client := srv.Client()
	for _, c := range cases {
		mustPut(t, st, c.key, []byte("data"), c.ct)
		head, err := client.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("pre/" + c.key)})
		if err != nil {
			t.Fatalf("HeadObject(pre/%s): %v", c.key, err)
		}
		if got := aws.ToString(head.ContentType); got != c.want {
			t.Errorf("%s: Content-Type = %q, want %q", c.key, got, c.want)
		}
		if got := aws.ToString(head.CacheControl); got != "public, max-age=600" {
			t.Errorf("%s: Cache-Control = %q, want the configured one", c.key, got)
		}
		if aws.ToInt64(head.ContentLength) != 4 {
			t.Errorf("%s: Content-Length = %d, want 4", c.key, aws.ToInt64(head.ContentLength))
		}
	}
}

// TestS3PrefixIsolation: stores with different URL prefixes on one bucket
// never see each other's objects, and List strips the prefix.
func TestS3PrefixIsolation(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	a := srv.Open(t, "site-a")
	b := srv.Open(t, "site-a/nested")
	root := srv.Open(t, "")
	key := "cert/" + uuidA + "/valid.html"
	mustPut(t, a, key, []byte("a"), "")
	mustPut(t, b, key, []byte("b"), "")
	mustPut(t, root, key, []byte("root"), "")
	for _, c := range []struct {
		st   storage.Store
		want string
	}{{a, "a"}, {b, "b"}, {root, "root"}} {
		if got := mustGet(t, c.st, key); string(got) != c.want {
			t.Errorf("Get = %q, want %q", got, c.want)
		}
		if got := mustList(t, c.st, ""); !slices.Equal(got, []string{key}) {
			t.Errorf("List = %q, want [%q]", got, key)
		}
	}
	want := []string{"cert/" + uuidA + "/valid.html", "site-a/cert/" + uuidA + "/valid.html", "site-a/nested/cert/" + uuidA + "/valid.html"}
	if got := bucketKeys(t, srv.Client(), srv.Bucket); !slices.Equal(got, want) {
		t.Errorf("bucket holds %q, want %q", got, want)
	}
	if err := a.Delete(bg, key); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, key); string(got) != "b" {
		t.Errorf("deleting in site-a touched site-a/nested: %q", got)
	}
}

// TestS3ListSkipsForeignObjects: objects written by something else that are
// not valid keys are not listed (List output is always usable).
func TestS3ListSkipsForeignObjects(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	st := srv.Open(t, "")
	client := srv.Client()
	for _, k := range []string{"other/x", "cert/has space.html", "cert/" + uuidA + "/", "index.html"} {
		body := "x"
		if strings.HasSuffix(k, "/") {
			body = "" // a "folder" marker, as consoles create them
		}
		if _, err := client.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(k), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("raw PutObject(%q): %v", k, err)
		}
	}
	mustPut(t, st, "cert/"+uuidA+"/valid.html", []byte("x"), "")
	if got := mustList(t, st, ""); !slices.Equal(got, []string{"cert/" + uuidA + "/valid.html"}) {
		t.Fatalf("List = %q, want only the valid object", got)
	}
}

func TestS3ObjectACLOption(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	st := srv.Open(t, "", storage.WithObjectACL("public-read"))
	key := "downloads/" + uuidA + "/Certificate.pdf"
	mustPut(t, st, key, []byte("pdf"), "application/pdf")
	if got := mustGet(t, st, key); string(got) != "pdf" {
		t.Fatalf("Get = %q", got)
	}
}

// TestS3CancelInFlight: a request to a hung server returns as soon as its
// context is canceled, with a transient error.
func TestS3CancelInFlight(t *testing.T) {
	t.Parallel()
	srv := s3test.StartDedicated(t)
	st := srv.Open(t, "")
	srv.Pause(t)
	defer srv.Resume(t)

	for _, op := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Put", func(ctx context.Context) error {
			return st.Put(ctx, "downloads/"+uuidA+"/Certificate.pdf", make([]byte, 60<<10), "application/pdf")
		}},
		{"Get", func(ctx context.Context) error { _, err := st.Get(ctx, "cert/"+uuidA+"/valid.html"); return err }},
		{"Delete", func(ctx context.Context) error { return st.Delete(ctx, "cert/"+uuidA+"/valid.html") }},
		{"List", func(ctx context.Context) error { _, err := st.List(ctx, "cert/"); return err }},
	} {
		wrote := make(chan struct{})
		var once sync.Once
		ctx, cancel := context.WithCancel(httptrace.WithClientTrace(bg, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) {
				once.Do(func() { close(wrote) })
			},
		}))
		res := make(chan error, 1)
		go func() { res <- op.call(ctx) }()
		var err error
		select {
		case <-wrote: // the request is on the wire; the server will never answer
			cancel()
			err = <-res
		case err = <-res:
			cancel()
			t.Fatalf("%s returned before its request was sent: %v", op.name, err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a hung server after cancel: error = %v, want context.Canceled", op.name, err)
		}
		if wrapsSentinel(err) {
			t.Errorf("%s: cancellation must be transient", op.name)
		}
	}
}

// TestS3ServerDown: an unreachable endpoint is a transient error.
func TestS3ServerDown(t *testing.T) {
	t.Parallel()
	srv := s3test.StartDedicated(t)
	st := srv.Open(t, "")
	mustPut(t, st, "cert/"+uuidA+"/valid.html", []byte("x"), "")
	srv.Stop(t)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	err := st.Put(ctx, "cert/"+uuidA+"/valid.html", []byte("y"), "")
	if err == nil {
		t.Fatal("Put to a stopped server succeeded")
	}
	if wrapsSentinel(err) || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Put to a stopped server: %v is classified permanent", err)
	}
	if !strings.Contains(err.Error(), "cert/"+uuidA+"/valid.html") {
		t.Errorf("error %q does not name the key", err)
	}
	if _, err := st.Get(ctx, "cert/"+uuidA+"/valid.html"); err == nil || wrapsSentinel(err) {
		t.Fatalf("Get from a stopped server: %v, want a transient error", err)
	}
}

// TestS3MissingBucketIsNotNotFound: a wrong bucket is a configuration
// problem, not a missing object.
func TestS3MissingBucketIsNotNotFound(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	st, err := storage.Open(bg, "s3://no-such-bucket-"+strings.ToLower(uuidB[:8]), srv.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(bg, "cert/"+uuidA+"/valid.html")
	if err == nil || errors.Is(err, storage.ErrNotFound) || wrapsSentinel(err) {
		t.Fatalf("Get from a missing bucket: %v, want a transient, non-NotFound error", err)
	}
}
