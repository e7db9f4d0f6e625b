package storage_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/consumer/storage/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// env is one fresh, empty store plus ways to look at it from outside.
type env struct {
	store storage.Store
	// fetch GETs key the way a user's browser would (web server over the
	// file root; presigned URL on S3).
	fetch func(t *testing.T, key string) (body []byte, header http.Header)
	// everything lists every object in the store's whole surroundings (the
	// directory containing the file root; the whole bucket), relative to
	// it, so escapes from the root/prefix become visible.
	everything func(t *testing.T) []string
	// inside is how everything names the store's own space ("root/" or the
	// S3 prefix).
	inside string
}

// backend opens a fresh env; opts are extra Open options.
type backend struct {
	name string
	open func(t *testing.T, opts ...storage.Option) *env
}

var backends = []backend{
	{"file", openFileEnv},
	{"s3", openS3Env},
}

// forEach runs fn as a subtest per backend.
func forEach(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

func openFileEnv(t *testing.T, opts ...storage.Option) *env {
	t.Helper()
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(context.Background(), "file://"+root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(web.Close)
	return &env{
		store:  st,
		inside: "root/",
		fetch: func(t *testing.T, key string) ([]byte, http.Header) {
			return httpGet(t, web.URL+"/"+key)
		},
		everything: func(t *testing.T) []string {
			t.Helper()
			var all []string
			err := filepath.WalkDir(outer, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() {
					rel, _ := filepath.Rel(outer, p)
					all = append(all, filepath.ToSlash(rel))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(all)
			return all
		},
	}
}

func openS3Env(t *testing.T, opts ...storage.Option) *env {
	t.Helper()
	srv := s3test.Start(t)
	const prefix = "site/certs"
	st := srv.Open(t, prefix, opts...)
	client := srv.Client()
	presign := s3.NewPresignClient(client)
	return &env{
		store:  st,
		inside: prefix + "/",
		fetch: func(t *testing.T, key string) ([]byte, http.Header) {
			t.Helper()
			req, err := presign.PresignGetObject(context.Background(), &s3.GetObjectInput{
				Bucket: aws.String(srv.Bucket),
				Key:    aws.String(prefix + "/" + key),
			}, s3.WithPresignExpires(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return httpGet(t, req.URL)
		},
		everything: func(t *testing.T) []string {
			t.Helper()
			return bucketKeys(t, client, srv.Bucket)
		},
	}
}

func bucketKeys(t *testing.T, client *s3.Client, bucket string) []string {
	t.Helper()
	all := []string{}
	pg := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			all = append(all, aws.ToString(o.Key))
		}
	}
	sort.Strings(all)
	return all
}

func httpGet(t *testing.T, url string) ([]byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, resp.Header
}
